"""QA operations: drawing the daily sample, assigning it to inspectors, submitting reviews."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from helpdesk import webhooks
from helpdesk.errors import DomainError
from helpdesk.notifications import in_default_language, notify
from helpdesk.roles import is_administrator
from tickets.models import Ticket

from . import queries
from .models import (
    MAX_RATE,
    MIN_RATE,
    Calibration,
    Criterion,
    CriterionScore,
    Dispute,
    Review,
    SampleRun,
    SampleScope,
    ScorecardVersion,
)
from .sampling import draw
from .scoring import Scored, review_score

REVIEW_READY = gettext_lazy("Your QA review of %(ticket)s is ready: %(score)s points. Read it, then acknowledge or dispute it.")


def check_rate(rate: Decimal) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise DomainError(
            "invalid_rate", _("The sampling rate must lie between 5%% and 10%%, not %s.") % f"{rate:%}", field="rate"
        )


def draw_daily_sample(
    *,
    day: date,
    scope: SampleScope,
    seed: int | None = None,
    trigger: str = SampleRun.Trigger.BEAT,
    actor: AbstractBaseUser | None = None,
    redraw: bool = False,
) -> tuple[SampleRun, bool]:
    """Draw the day's sample for the scope and assign it; returns (run, drawn now).

    One run per (day, scope): drawing again returns the existing run and changes nothing,
    unless `redraw`, which replaces a run none of whose reviews has been submitted.
    """
    check_rate(scope.rate)
    if day >= timezone.localdate():
        raise DomainError("invalid_day", _("Only a day that is over can be sampled."), field="date")
    existing = SampleRun.objects.filter(day=day, scope=scope).first()
    if existing is not None and not redraw:
        return existing, False
    seed = secrets.randbits(48) if seed is None else seed
    with transaction.atomic():
        if existing is not None:
            if existing.reviews.filter(status=Review.Status.SUBMITTED).exists():
                raise DomainError("already_reviewed", _("Reviews of this sample were submitted: it cannot be redrawn."))
            existing.delete()
        people = queries.population(day=day, scope=scope)
        drawn = [key[-1] for key in draw(people, scope.rate, seed)]  # the ticket ids, in key order
        try:
            with transaction.atomic():
                run = SampleRun.objects.create(
                    day=day, scope=scope, seed=seed, rate=scope.rate, population=sum(map(len, people.values())),
                    trigger=trigger, drawn_by=actor if getattr(actor, "pk", None) else None,
                )
        except IntegrityError:  # a second beat or command drew it a moment ago
            return SampleRun.objects.get(day=day, scope=scope), False
        _assign(run, drawn, scope)
    return run, True


def _assign(run: SampleRun, ticket_ids: list[int], scope: SampleScope) -> None:
    """Each drawn conversation to the inspector with the least open work who did not handle it."""
    version = scope.scorecard.versions.order_by("-number").first()
    if version is None:
        raise DomainError("no_scorecard", _("The scope's scorecard has no version yet."), field="scorecard")
    loads = queries.open_workloads()
    handled = queries.handlers(ticket_ids)
    agents = dict(Ticket.objects.filter(pk__in=ticket_ids).values_list("pk", "assignee_id"))
    reviews = []
    for ticket_id in ticket_ids:
        eligible = [user_id for user_id in loads if user_id not in handled.get(ticket_id, set())]
        inspector = min(eligible, key=lambda user_id: (loads[user_id], user_id)) if eligible else None
        if inspector is not None:
            loads[inspector] += 1
        reviews.append(
            Review(run=run, ticket_id=ticket_id, agent_id=agents[ticket_id], inspector_id=inspector, scorecard_version=version)
        )
    Review.objects.bulk_create(reviews, batch_size=2000)


def draw_all_scopes(*, day: date | None = None) -> int:
    """The beat's job: yesterday's sample for every active scope; returns how many runs were drawn."""
    day = day or timezone.localdate() - timedelta(days=1)
    return sum(draw_daily_sample(day=day, scope=scope)[1] for scope in SampleScope.objects.filter(is_active=True))


@transaction.atomic
def submit_review(
    *,
    review: Review,
    scores: dict[str, tuple[int | None, str]],
    strengths: str = "",
    shortcomings: str = "",
    coaching: str = "",
    actor: AbstractBaseUser,
) -> Review:
    """Score every criterion of the review's scorecard (None = N/A) and compute the result.

    Only the assigned inspector (or an administrator) submits, once.
    """
    review = Review.objects.select_for_update().select_related("scorecard_version", "agent__user", "ticket").get(pk=review.pk)
    if review.status != Review.Status.ASSIGNED:
        raise DomainError("already_submitted", _("This review was submitted already."))
    if review.inspector_id != actor.pk and not is_administrator(actor):
        raise DomainError("not_yours", _("This review is assigned to another inspector."))
    criteria = list(review.scorecard_version.criteria.all())
    known = {criterion.code for criterion in criteria}
    unknown = sorted(set(scores) - known)
    if unknown:
        raise DomainError("unknown_criterion", _("Unknown criterion “%s”.") % unknown[0], field=f"scores.{unknown[0]}")
    rows, items = [], []
    for criterion in criteria:
        if criterion.code not in scores:
            raise DomainError("required", _("Score “%s” (or mark it N/A).") % criterion.title, field=f"scores.{criterion.code}")
        points, comment = scores[criterion.code]
        if points is None and not criterion.allows_na:
            raise DomainError("na_not_allowed", _("“%s” cannot be N/A.") % criterion.title, field=f"scores.{criterion.code}")
        if points is not None and not 0 <= points <= criterion.max_points:
            message = _("“%(title)s” takes 0 to %(max)d points.") % {"title": criterion.title, "max": criterion.max_points}
            raise DomainError("invalid_points", message, field=f"scores.{criterion.code}")
        rows.append(CriterionScore(review=review, criterion=criterion, points=points, comment=comment))
        items.append(Scored(weight=criterion.weight, max_points=criterion.max_points, critical=criterion.critical, points=points))
    CriterionScore.objects.bulk_create(rows)
    review.score = review_score(items)
    review.strengths, review.shortcomings, review.coaching = strengths, shortcomings, coaching
    review.status, review.submitted_at = Review.Status.SUBMITTED, timezone.now()
    review._history_user = actor
    review.save()
    agent_user = review.agent.user
    if review.calibration_id is None:
        text = in_default_language(
            REVIEW_READY, ticket=Ticket(pk=review.ticket_id).reference, score=review.score if review.score is not None else "—"
        )
        notify(recipients=[agent_user], kind="qa_review", text=text, ticket=review.ticket)
    webhooks.emit("qa.review.completed", {
        "id": review.pk, "ticket": Ticket(pk=review.ticket_id).reference, "agent_id": review.agent_id,
        "inspector_id": review.inspector_id, "score": review.score, "submitted_at": review.submitted_at,
    })
    return review


def _own_submitted(review: Review, actor: AbstractBaseUser) -> Review:
    review = Review.objects.select_for_update().get(pk=review.pk)
    if review.status != Review.Status.SUBMITTED or review.agent.user_id != actor.pk:
        raise DomainError("not_your_review", _("Only the reviewed agent acknowledges or disputes a submitted review."))
    return review


@transaction.atomic
def acknowledge_review(*, review: Review, actor: AbstractBaseUser) -> Review:
    """The agent has read the report and accepts it; acknowledging twice changes nothing."""
    review = _own_submitted(review, actor)
    if Dispute.objects.filter(review=review, status=Dispute.Status.OPEN).exists():
        raise DomainError("disputed", _("This review is disputed; wait for the team lead's decision."))
    if review.acknowledged_at is None:
        review.acknowledged_at = timezone.now()
        review._history_user = actor
        review.save(update_fields=["acknowledged_at"])
    return review


@transaction.atomic
def dispute_review(*, review: Review, reason: str, actor: AbstractBaseUser) -> Dispute:
    """The agent objects, with a reason, once, before acknowledging."""
    if not reason.strip():
        raise DomainError("required", _("Say why you dispute the review."), field="reason")
    review = _own_submitted(review, actor)
    if review.acknowledged_at is not None:
        raise DomainError("acknowledged", _("An acknowledged review cannot be disputed."))
    if Dispute.objects.filter(review=review).exists():
        raise DomainError("already_disputed", _("This review was disputed already."))
    dispute = Dispute(review=review, reason=reason.strip(), original_score=review.score)
    dispute._history_user = actor
    dispute.save()
    return dispute


@transaction.atomic
def resolve_dispute(
    *, dispute: Dispute, uphold: bool, comment: str, actor: AbstractBaseUser,
    scores: dict[str, int | None] | None = None,
) -> Dispute:
    """A team lead of the agent's team (or an administrator) upholds the review or amends scores."""
    dispute = Dispute.objects.select_for_update().select_related("review__agent").get(pk=dispute.pk)
    if dispute.status != Dispute.Status.OPEN:
        raise DomainError("resolved", _("This dispute was resolved already."))
    if not (is_administrator(actor) or queries.leads_agent(actor, dispute.review.agent)):
        raise DomainError("not_your_team", _("Only a team lead of the agent's team resolves this dispute."))
    if not comment.strip():
        raise DomainError("required", _("Explain the decision to the agent."), field="comment")
    review = dispute.review
    if not uphold:
        if not scores:
            raise DomainError("required", _("Give the amended scores."), field="scores")
        rows = {row.criterion.code: row for row in review.scores.select_related("criterion")}
        for code, points in scores.items():
            row = rows.get(code)
            if row is None:
                raise DomainError("unknown_criterion", _("Unknown criterion “%s”.") % code, field=f"scores.{code}")
            if points is None and not row.criterion.allows_na or points is not None and not 0 <= points <= row.criterion.max_points:
                raise DomainError("invalid_points", _("Invalid points for “%s”.") % row.criterion.title, field=f"scores.{code}")
            row.points = points
        CriterionScore.objects.bulk_update(rows.values(), ["points"])
        review.score = review_score(
            Scored(weight=r.criterion.weight, max_points=r.criterion.max_points, critical=r.criterion.critical, points=r.points)
            for r in rows.values()
        )
        review._history_user, review._change_reason = actor, "dispute_amended"
        review.save(update_fields=["score"])
    dispute.status = Dispute.Status.UPHELD if uphold else Dispute.Status.AMENDED
    dispute.resolution, dispute.resolved_at, dispute.resolved_by = comment.strip(), timezone.now(), actor
    dispute._history_user = actor
    dispute.save()
    return dispute


@transaction.atomic
def new_scorecard_version(*, scorecard) -> ScorecardVersion:
    """A copy of the scorecard's latest criteria as a new version, to edit; past reviews keep theirs."""
    latest = scorecard.versions.select_for_update().order_by("-number").first()
    version = ScorecardVersion.objects.create(scorecard=scorecard, number=(latest.number + 1) if latest else 1)
    if latest is not None:
        Criterion.objects.bulk_create(
            Criterion(
                version=version, section=c.section, code=c.code, title=c.title, guidance=c.guidance, weight=c.weight,
                max_points=c.max_points, allows_na=c.allows_na, critical=c.critical, position=c.position,
            )
            for c in latest.criteria.all()
        )
    return version


@transaction.atomic
def start_calibration(*, name: str, tickets: list[Ticket], inspectors: list, version: ScorecardVersion, actor) -> Calibration:
    """Every inspector gets every conversation to score blind; none of it counts for the agents."""
    if len({i.pk for i in inspectors}) < 2:
        raise DomainError("too_few_inspectors", _("A calibration needs at least two inspectors."), field="inspectors")
    if not tickets:
        raise DomainError("required", _("Pick at least one conversation."), field="tickets")
    unassigned = [t.reference for t in tickets if t.assignee_id is None]
    if unassigned:
        raise DomainError("no_agent", _("%s has no agent to calibrate on.") % unassigned[0], field="tickets")
    calibration = Calibration.objects.create(name=name, scorecard_version=version, created_by=actor)
    Review.objects.bulk_create(
        Review(calibration=calibration, ticket=ticket, agent_id=ticket.assignee_id, inspector=inspector, scorecard_version=version)
        for ticket in tickets
        for inspector in {i.pk: i for i in inspectors}.values()
    )
    return calibration
