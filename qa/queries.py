"""Read-side helpers for QA: the day's population, inspectors' workloads."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.calendars import add_business_seconds
from helpdesk.models import BusinessCalendar
from helpdesk.queries import agent_of, schedule_for
from helpdesk.roles import (
    API_CLIENT,
    QA_INSPECTOR,
    TEAM_LEAD,
    TRAINER,
    has_role,
    is_administrator,
)
from tickets.models import Message, Ticket

from .models import CriterionScore, Dispute, Review, SampleScope


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The day in TIME_ZONE, as aware instants: a support team's "yesterday"."""
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


# A conversation's key for sampling: stable across databases and insertion orders; the id
# comes last, only to tell apart two conversations created the same microsecond with no external id.
SampleKey = tuple[datetime, str, int]


def population(*, day: date, scope: SampleScope) -> dict[str, list[SampleKey]]:
    """{agent username: conversation keys} of conversations solved or closed that day with an agent reply.

    Keyed by username and (created_at, external_id, id), not by ids alone, so the sample drawn
    from it does not depend on the ids a database handed out. Read as plain columns in chunks:
    a million conversations are a few hundred MB at most, never whole rows.
    """
    start, end = day_bounds(day)
    tickets = Ticket.objects.filter(
        status__in=[Ticket.Status.SOLVED, Ticket.Status.CLOSED], solved_at__gte=start, solved_at__lt=end,
        first_response_at__isnull=False, assignee__isnull=False,
    )
    if scope.team_id is not None:
        tickets = tickets.filter(team_id=scope.team_id)
    by_agent: dict[str, list[SampleKey]] = defaultdict(list)
    rows = tickets.values_list("assignee__user__username", "created_at", "external_id", "id")
    for username, created_at, external_id, ticket_id in rows.iterator(chunk_size=20_000):
        by_agent[username].append((created_at, external_id, ticket_id))
    return dict(by_agent)


def inspectors() -> QuerySet:
    return get_user_model().objects.filter(groups__name=QA_INSPECTOR, is_active=True).distinct().order_by("pk")


def open_workloads() -> dict[int, int]:
    """Reviews waiting per inspector, every inspector included."""
    counts = inspectors().annotate(open=Count("qa_reviews_to_do", filter=Q(qa_reviews_to_do__status=Review.Status.ASSIGNED)))
    return dict(counts.values_list("pk", "open"))


def handlers(ticket_ids: list[int]) -> dict[int, set[int]]:
    """{ticket id: user ids of the agents who handled it} (assignee or author of a reply or note)."""
    handled: dict[int, set[int]] = defaultdict(set)
    for ticket_id, user_id in Ticket.objects.filter(pk__in=ticket_ids, assignee__isnull=False).values_list("pk", "assignee__user_id"):
        handled[ticket_id].add(user_id)
    authored = Message.objects.filter(ticket_id__in=ticket_ids, author_agent__isnull=False)
    for ticket_id, user_id in authored.values_list("ticket_id", "author_agent__user_id").distinct():
        handled[ticket_id].add(user_id)
    return handled


def reviews_visible_to(user) -> QuerySet[Review]:
    """Administrators and trainers see every review; inspectors theirs; team leads their
    teams'; agents only their own submitted ones (never another agent's)."""
    reviews = Review.objects.all()
    if is_administrator(user) or has_role(user, TRAINER) or has_role(user, API_CLIENT):
        return reviews
    visible = Q(inspector=user)
    agent = agent_of(user)
    if agent is not None:
        visible |= Q(agent=agent, status=Review.Status.SUBMITTED, calibration__isnull=True)
        if has_role(user, TEAM_LEAD):
            visible |= Q(agent__teams__in=agent.teams.values("pk"), status=Review.Status.SUBMITTED, calibration__isnull=True)
    return reviews.filter(pk__in=Review.objects.filter(visible).values("pk"))


def leads_agent(user, agent) -> bool:
    """Whether `user` is a team lead of one of the agent's teams."""
    lead = agent_of(user)
    return (
        lead is not None and has_role(user, TEAM_LEAD)
        and agent.teams.filter(pk__in=lead.teams.values("pk")).exists()
    )


def overdue_disputes(*, now: datetime | None = None) -> QuerySet:
    """Open disputes older than QA_DISPUTE_BUSINESS_DAYS business days on the dispute calendar.

    Business days are counted whole (the calendar's working days), from the opening date.
    """
    now = now or timezone.now()
    open_disputes = Dispute.objects.filter(status=Dispute.Status.OPEN)
    calendar = BusinessCalendar.objects.filter(slug=settings.QA_DISPUTE_CALENDAR).first()
    if calendar is None:
        return open_disputes.filter(opened_at__lt=now - timedelta(days=settings.QA_DISPUTE_BUSINESS_DAYS))
    schedule = schedule_for(calendar)
    # Checked one by one: open disputes are a small share of a small sample.
    late = [
        d.pk for d in open_disputes.only("pk", "opened_at")
        if add_business_seconds(schedule, d.opened_at, settings.QA_DISPUTE_BUSINESS_DAYS * _workday_seconds(schedule)) <= now
    ]
    return open_disputes.filter(pk__in=late)


def _workday_seconds(schedule) -> float:
    """The length of the calendar's usual working day (its longest weekday)."""
    monday = date(2024, 1, 1)
    return max(
        (sum((end - start).total_seconds() for start, end in schedule.intervals_on(monday + timedelta(days=d))) for d in range(7)),
        default=8 * 3600,
    )


def calibration_report(calibration) -> dict:
    """Agreement per criterion (Fleiss' kappa), each inspector's distance from the group and each
    conversation's spread; empty until every inspector has submitted (scoring stays blind)."""
    from .calibration import (
        FAR_FROM_GROUP,
        LOW_AGREEMENT,
        fleiss_kappa,
        rater_deviation,
        spread,
    )
    from .models import CriterionScore

    reviews = list(calibration.reviews.select_related("inspector", "ticket"))
    submitted = [r for r in reviews if r.status == Review.Status.SUBMITTED]
    report = {"expected": len(reviews), "submitted": len(submitted), "complete": bool(reviews) and len(submitted) == len(reviews)}
    if not report["complete"]:
        return report
    criteria = list(calibration.scorecard_version.criteria.all())
    points: dict[tuple[int, int], list] = {}
    for row in CriterionScore.objects.filter(review__calibration=calibration).values_list("criterion_id", "review__ticket_id", "points"):
        points.setdefault((row[0], row[1]), []).append(row[2])
    tickets = sorted({r.ticket_id for r in reviews})
    rows = []
    for criterion in criteria:
        categories = [*range(criterion.max_points + 1), None]
        table = [[points.get((criterion.pk, t), []).count(c) for c in categories] for t in tickets]
        kappa = fleiss_kappa(table)
        rows.append({"code": criterion.code, "title": criterion.title, "kappa": round(kappa, 3), "low": kappa < LOW_AGREEMENT})
    totals: dict[int, dict[int, float]] = {}
    names = {}
    for review in submitted:
        totals.setdefault(review.inspector_id, {})[review.ticket_id] = float(review.score or 0)
        names[review.inspector_id] = review.inspector.username
    deviation = rater_deviation(totals)
    report["criteria"] = rows
    report["inspectors"] = [
        {"username": names[i], "deviation": round(d, 2), "far": d > FAR_FROM_GROUP} for i, d in sorted(deviation.items())
    ]
    references = {r.ticket_id: r.ticket.reference for r in reviews}
    report["tickets"] = [
        {"reference": references[t], "scores": sorted(s[t] for s in totals.values()), "spread": round(spread([s[t] for s in totals.values()]), 2)}
        for t in tickets
    ]
    return report


def score_report(*, start: date, end: date, by: str, team: int | None = None) -> list[dict]:
    """QA scores of reviews submitted in [start, end] (days in TIME_ZONE), by "agent", "team" or
    "criterion": reviews, mean with a 95% interval, and the mean per ISO week (the trend).
    Calibration reviews never count."""
    from .statistics import mean_with_interval

    first, _ = day_bounds(start)
    _, last = day_bounds(end)
    reviews = Review.objects.filter(
        status=Review.Status.SUBMITTED, calibration__isnull=True, submitted_at__gte=first, submitted_at__lt=last,
        score__isnull=False,
    )
    if team is not None:
        reviews = reviews.filter(agent__teams=team)
    if by == "criterion":
        rows = CriterionScore.objects.filter(review__in=reviews.values("pk"), points__isnull=False).values_list(
            "criterion__code", "criterion__title", "review__submitted_at", "points", "criterion__max_points"
        )
        values = ((code, title, at, 100.0 * points / most) for code, title, at, points, most in rows)
    elif by == "team":
        rows = reviews.values_list("agent__teams__pk", "agent__teams__name", "submitted_at", "score")
        values = ((pk, name, at, float(score)) for pk, name, at, score in rows if pk is not None)
    elif by == "agent":
        rows = reviews.values_list("agent_id", "agent__display_name", "submitted_at", "score")
        values = ((pk, name, at, float(score)) for pk, name, at, score in rows)
    else:
        raise ValueError(by)
    groups: dict = {}
    for key, name, at, value in values:
        group = groups.setdefault(key, {"key": key, "name": name, "values": [], "weeks": defaultdict(list)})
        group["values"].append(value)
        year, week, _ = timezone.localtime(at).isocalendar()
        group["weeks"][f"{year}-W{week:02d}"].append(value)
    report = []
    for group in groups.values():
        centre, low, high = mean_with_interval(group["values"])
        report.append({
            "key": group["key"], "name": group["name"], "reviews": len(group["values"]),
            "mean": _round(centre), "ci95": [_round(low), _round(high)],
            "trend": [{"week": week, "mean": _round(sum(v) / len(v))} for week, v in sorted(group["weeks"].items())],
        })
    return sorted(report, key=lambda row: (row["mean"] is None, row["mean"] or 0))


def training_needs(*, start: date, end: date, team: int | None = None) -> list[dict]:
    """Per agent, the criteria they most often fell short on (below full points), most first."""
    first, _ = day_bounds(start)
    _, last = day_bounds(end)
    scores = CriterionScore.objects.filter(review__agent__teams=team) if team is not None else CriterionScore.objects.all()
    rows = (
        scores.filter(
            review__status=Review.Status.SUBMITTED, review__calibration__isnull=True,
            review__submitted_at__gte=first, review__submitted_at__lt=last, points__isnull=False,
            points__lt=F("criterion__max_points"),
        )
        .values("review__agent_id", "review__agent__display_name", "criterion__code", "criterion__title")
        .annotate(misses=Count("id"))
        .order_by("review__agent__display_name", "-misses", "criterion__code")
    )
    needs: dict = {}
    for row in rows:
        agent = needs.setdefault(row["review__agent_id"], {"agent": row["review__agent__display_name"], "criteria": []})
        agent["criteria"].append({"code": row["criterion__code"], "title": row["criterion__title"], "misses": row["misses"]})
    return list(needs.values())


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def report_refusal(user, team: int | None) -> str | None:
    """Why `user` may not read QA scores for `team` (None: every team), or None if they may.

    Administrators, trainers and integrations read every team; a team lead only their own.
    """
    if is_administrator(user) or has_role(user, TRAINER) or has_role(user, API_CLIENT):
        return None
    if has_role(user, TEAM_LEAD):
        own = agent_of(user)
        if own is not None and team is not None and own.teams.filter(pk=team).exists():
            return None
        return str(_("Team leads see their own team's scores: give ?team= one of yours."))
    return str(_("Your role does not see other agents' QA scores."))
