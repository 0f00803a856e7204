"""Satisfaction surveys: a signed, single-use link on solve; ratings; the complaint loop.

A survey link carries only the survey's nonce, signed with a salt of its own; the database
row decides whether it is still valid (expires_at) and unused (used_at, claimed by a
conditional UPDATE). Every rating, from the survey page or the API, goes through
`record_rating`, which keeps one Csat per ticket and one Complaint per low rating.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from helpdesk import webhooks
from helpdesk.errors import DomainError
from helpdesk.notifications import in_default_language, notify, team_leads
from helpdesk.queries import agent_of
from helpdesk.roles import sees_everything

from .models import Complaint, Csat, CsatSurvey, Message, Ticket
from .payloads import message_data

logger = logging.getLogger(__name__)

SALT = "tickets.csat.survey"
LOW_STARS = 2  # 1 or 2 stars open a complaint
COMPLAINT_TEXT = gettext_lazy("Ticket %(ticket)s was rated %(stars)s of 5 stars: a complaint to follow up.")

# Why a link cannot be used; the view maps them to 400 (tampered) and 410 (expired, used).
TAMPERED, EXPIRED, USED = "survey_invalid", "survey_expired", "survey_used"


# --- sending the survey ------------------------------------------------------------


def on_solved(ticket: Ticket) -> CsatSurvey:
    """Called by the ticket services, inside their transaction, when a ticket becomes solved.

    Opens a new survey (earlier unanswered ones of the ticket stop working, so one link is
    live) and sends its link: by email after commit, or as a public system message that the
    chat platform relays.
    """
    now = timezone.now()
    CsatSurvey.objects.filter(ticket_id=ticket.pk, used_at=None, expires_at__gt=now).update(expires_at=now)
    survey = CsatSurvey.objects.create(
        ticket=ticket, sent_at=now, expires_at=now + timedelta(days=settings.CSAT_SURVEY_DAYS)
    )
    customer = ticket.customer
    url = survey_url(survey)
    with translation.override(customer.language or settings.LANGUAGE_CODE):
        subject = _("How did we do? Rate ticket %(ticket)s") % {"ticket": ticket.reference}
        body = _(
            "Your request “%(subject)s” (ticket %(ticket)s) has been solved. Please tell us how satisfied you "
            "are, from 1 to 5 stars: %(url)s\nThe link works once and for %(days)s days."
        ) % {"subject": ticket.subject, "ticket": ticket.reference, "url": url, "days": settings.CSAT_SURVEY_DAYS}
    if customer.email:
        address = customer.email
        transaction.on_commit(lambda: _mail(subject, body, address), robust=True)
    else:
        message = Message.objects.create(
            ticket=ticket, author_kind=Message.AuthorKind.SYSTEM, is_internal=False, body=body, sent_at=now, created_at=now
        )
        webhooks.emit("message.created", message_data(message))
    return survey


def _mail(subject: str, body: str, address: str) -> None:
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=False)


def survey_token(survey: CsatSurvey) -> str:
    """The signed token of the survey's link: its nonce, nothing else."""
    return signing.dumps(survey.nonce.hex, salt=SALT)


def survey_path(survey: CsatSurvey) -> str:
    return reverse("csat-survey", args=[survey_token(survey)])


def survey_url(survey: CsatSurvey) -> str:
    """The absolute link sent to the customer."""
    return settings.PUBLIC_URL + survey_path(survey)


# --- answering it ------------------------------------------------------------------


def survey_for_token(token: str) -> CsatSurvey:
    """The survey a link names, if it can still be answered; else DomainError TAMPERED/EXPIRED/USED."""
    try:
        nonce = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise DomainError(TAMPERED, _("This link is not valid. Please use the link exactly as we sent it.")) from None
    survey = (
        CsatSurvey.objects.select_related("ticket__customer").filter(nonce=nonce).first()
        if isinstance(nonce, str) and len(nonce) == 32
        else None
    )
    if survey is None:
        raise DomainError(TAMPERED, _("This link is not valid. Please use the link exactly as we sent it."))
    if survey.used_at is not None:
        raise DomainError(USED, _("This survey has been answered already. Thank you!"))
    if survey.expires_at <= timezone.now():
        raise DomainError(EXPIRED, _("This survey link has expired."))
    return survey


@transaction.atomic
def submit_survey(*, token: str, stars: int, comment: str = "") -> Csat:
    """Rate the ticket from the survey page. The link is claimed with a conditional UPDATE,
    so of two concurrent submits exactly one counts; the other gets USED."""
    survey = survey_for_token(token)
    _check_stars(stars)
    # The ticket first, as the ticket services lock it before on_solved touches its surveys.
    Ticket.objects.select_for_update(of=("self",)).filter(pk=survey.ticket_id).first()
    now = timezone.now()
    claimed = CsatSurvey.objects.filter(pk=survey.pk, used_at=None, expires_at__gt=now).update(used_at=now)
    if claimed != 1:  # another submit got there first (or it expired a moment ago)
        raise DomainError(USED, _("This survey has been answered already. Thank you!"))
    return record_rating(ticket=survey.ticket, stars=stars, comment=comment, source=Csat.Source.SURVEY, rated_at=now)


def _check_stars(stars: Any) -> None:
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise DomainError("invalid_stars", _("Give from 1 to 5 stars."), field="stars")


@transaction.atomic
def record_rating(
    *,
    ticket: Ticket,
    stars: int,
    comment: str = "",
    source: str,
    rated_at: datetime | None = None,
    actor: AbstractBaseUser | None = None,
) -> Csat:
    """Store the ticket's rating, replacing an earlier one, and emit "csat.received".

    The ticket row is locked first, so two ratings of one ticket are applied one after the
    other. 1 or 2 stars open the ticket's complaint (or reopen and update the one it has)
    and notify the team's leads.
    """
    _check_stars(stars)
    if source not in Csat.Source.values:
        raise DomainError("invalid_source", _("Unknown source “%s”.") % source, field="source")
    ticket = Ticket.objects.select_for_update(of=("self",)).get(pk=ticket.pk)
    now = timezone.now()
    csat, _created = Csat.objects.update_or_create(
        ticket=ticket,
        defaults={
            "stars": stars, "comment": comment.strip(), "source": source, "rated_at": rated_at or now,
            "agent_id": ticket.assignee_id, "team_id": ticket.team_id,
        },
    )
    complaint = _open_complaint(csat, ticket, actor=actor, at=now) if stars <= LOW_STARS else None
    webhooks.emit("csat.received", csat_data(csat, complaint_id=complaint.pk if complaint else _complaint_id(csat)))
    return csat


def _complaint_id(csat: Csat) -> int | None:
    return Complaint.objects.filter(csat=csat).values_list("pk", flat=True).first()


def _open_complaint(csat: Csat, ticket: Ticket, *, actor: AbstractBaseUser | None, at: datetime) -> Complaint:
    complaint = Complaint.objects.select_for_update(of=("self",)).filter(csat=csat).first()
    if complaint is None:
        complaint = Complaint(csat=csat, ticket=ticket, created_at=at)
    complaint.team_id = ticket.team_id
    # A customer unhappy again after the follow-up: the complaint is open again.
    complaint.status = Complaint.Status.OPEN
    complaint.closed_at = None
    complaint.closed_by = None
    if actor is not None and getattr(actor, "pk", None):
        complaint._history_user = actor
    complaint.save()
    text = in_default_language(COMPLAINT_TEXT, ticket=ticket.reference, stars=csat.stars)
    notify(recipients=list(team_leads(ticket.team)), kind="csat_complaint", text=text, ticket=ticket)
    return complaint


def csat_data(csat: Csat, *, complaint_id: int | None = None) -> dict[str, Any]:
    """The webhook payload of a rating: codes and ids, never labels."""
    return {
        "ticket": Ticket(pk=csat.ticket_id).reference,
        "stars": csat.stars,
        "comment": csat.comment,
        "source": csat.source,
        "rated_at": csat.rated_at,
        "agent_id": csat.agent_id,
        "team_id": csat.team_id,
        "complaint_id": complaint_id,
    }


# --- the complaint loop ------------------------------------------------------------


@transaction.atomic
def record_complaint_findings(
    *, complaint: Complaint, root_cause: str, outcome: str, actor: AbstractBaseUser | None = None
) -> Complaint:
    """Save what the lead found (root cause, outcome) without closing the complaint."""
    if root_cause and root_cause not in Complaint.RootCause.values:
        raise DomainError("invalid_root_cause", _("Unknown root cause “%s”.") % root_cause, field="root_cause")
    complaint = Complaint.objects.select_for_update(of=("self",)).get(pk=complaint.pk)
    if complaint.status == Complaint.Status.CLOSED:
        raise DomainError("complaint_closed", _("The complaint is closed already."))
    if (complaint.root_cause, complaint.outcome) == (root_cause, outcome.strip()):
        return complaint
    complaint.root_cause, complaint.outcome = root_cause, outcome.strip()
    if actor is not None and getattr(actor, "pk", None):
        complaint._history_user = actor
    complaint.save()
    return complaint


@transaction.atomic
def close_complaint(
    *, complaint: Complaint, root_cause: str, outcome: str, actor: AbstractBaseUser | None = None
) -> Complaint:
    """Close the complaint with its root cause and outcome, both required; closing twice is refused."""
    if root_cause not in Complaint.RootCause.values:
        raise DomainError("required", _("Choose the root cause before closing."), field="root_cause")
    if not outcome.strip():
        raise DomainError("required", _("Describe the outcome before closing."), field="outcome")
    complaint = Complaint.objects.select_for_update(of=("self",)).get(pk=complaint.pk)
    if complaint.status == Complaint.Status.CLOSED:
        raise DomainError("complaint_closed", _("The complaint is closed already."))
    complaint.root_cause, complaint.outcome = root_cause, outcome.strip()
    complaint.status = Complaint.Status.CLOSED
    complaint.closed_at = timezone.now()
    complaint.closed_by = actor if actor is not None and getattr(actor, "pk", None) else None
    if complaint.closed_by is not None:
        complaint._history_user = actor
    complaint.save()
    return complaint


# --- who sees what -----------------------------------------------------------------


def ratings_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Csat]:
    """Ratings that count for the user's teams or for the user; all for roles that work across teams.

    By the rating's own team and agent, not the ticket's current team: a transferred ticket's
    rating stays with the team that served the customer.
    """
    if sees_everything(user):
        return Csat.objects.all()
    agent = agent_of(user) if user.is_authenticated and user.is_active else None
    if agent is None:
        return Csat.objects.none()
    return Csat.objects.filter(Q(team__in=agent.teams.values("pk")) | Q(agent=agent))


def complaints_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Complaint]:
    """Complaints of the user's teams; every complaint for roles that work across teams."""
    if sees_everything(user):
        return Complaint.objects.all()
    agent = agent_of(user) if user.is_authenticated and user.is_active else None
    if agent is None:
        return Complaint.objects.none()
    return Complaint.objects.filter(team__in=agent.teams.values("pk"))
