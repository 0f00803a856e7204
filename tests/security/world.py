"""One small organisation with something of everything on two teams, for the security tests.

Support (alice, an agent; lena, its lead) and Billing (bob) each own a ticket with a customer,
messages with an attachment, a rating with its complaint, QA reviews (submitted, assigned and
disputed), a canned reply and a sample run. Inspectors iris (ours) and ivy (theirs) split the
reviews. Knowledge articles are not team-scoped: one is public, one internal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.contrib.auth.models import Group, User
from django.utils import timezone

from helpdesk import roles
from helpdesk.models import Agent, Customer, Team
from knowledge import services as kb
from knowledge.models import Article, CannedReply
from qa.models import Dispute, Review, SampleRun, SampleScope, Scorecard
from tickets.models import Complaint, Csat, Message, Ticket

from ..factories import (
    CustomerFactory,
    MessageFactory,
    TeamFactory,
    TicketFactory,
    UserFactory,
)


@dataclass
class Side:
    """What one team owns."""

    team: Team
    agent: Agent
    customer: Customer
    ticket: Ticket
    message: Message
    csat: Csat
    complaint: Complaint
    review: Review  # submitted, of the team's agent
    assigned_review: Review  # waiting for its inspector
    disputed_review: Review  # submitted, disputed by the agent
    canned_reply: CannedReply
    sample_run: SampleRun
    # Articles belong to no team: the "ours" side carries the public one, "theirs" the internal
    # one, so the same matrix says who reads internal articles.
    article: Article | None = None


@dataclass
class World:
    ours: Side  # support: alice's and lena's team
    theirs: Side  # billing: bob's team
    escalation_team: Team
    users: dict[str, User]  # by role key (see ROLES in test_authorization_matrix)
    key: str  # the integration's write key
    public_article: Article
    internal_article: Article
    global_reply: CannedReply


def _review(ticket: Ticket, agent: Agent, inspector: User, *, submitted: bool) -> Review:
    version = Scorecard.objects.get(slug="standard").versions.get(number=1)
    review = Review.objects.create(ticket=ticket, agent=agent, inspector=inspector, scorecard_version=version)
    if submitted:
        Review.objects.filter(pk=review.pk).update(
            status=Review.Status.SUBMITTED, score=Decimal("80.00"), submitted_at=timezone.now()
        )
        review.refresh_from_db()
    return review


def _side(team: Team, agent: Agent, inspector: User, label: str, day: date) -> Side:
    customer = CustomerFactory(name=f"{label}客户", external_id=f"{label}-customer")
    ticket = TicketFactory(team=team, customer=customer, status=Ticket.Status.OPEN, subject=f"{label} 的问题")
    message = MessageFactory(
        ticket=ticket, body=f"{label} 的消息", channel_message_id=f"{label}-m1",
        attachments=[{"name": f"{label}.png", "url": f"https://files.example.com/{label}.png", "size": 10}],
    )
    rating = Csat.objects.create(ticket=ticket, stars=1, source=Csat.Source.API, agent=agent, team=team)
    complaint = Complaint.objects.create(csat=rating, ticket=ticket, team=team)
    review = _review(ticket, agent, inspector, submitted=True)
    assigned = _review(TicketFactory(team=team, status=Ticket.Status.SOLVED), agent, inspector, submitted=False)
    disputed = _review(TicketFactory(team=team, status=Ticket.Status.SOLVED), agent, inspector, submitted=True)
    Dispute.objects.create(review=disputed, reason="我不同意", original_score=disputed.score)
    reply = CannedReply.objects.create(title=f"{label} 话术", shortcut=f"{label}-hi", body="您好 {customer_name}", team=team)
    scope = SampleScope.objects.create(team=team, scorecard=Scorecard.objects.get(slug="standard"), rate=Decimal("0.05"))
    run = SampleRun.objects.create(day=day, scope=scope, seed=1, rate=Decimal("0.05"), population=1, trigger="command")
    return Side(team, agent, customer, ticket, message, rating, complaint, review, assigned, disputed, reply, run)


def build_world(*, alice: Agent, lena: Agent, bob: Agent, users: dict[str, User], key: str) -> World:
    ivy = UserFactory(username="ivy")
    ivy.groups.add(Group.objects.get(name=roles.QA_INSPECTOR))
    day = date(2026, 3, 2)
    ours = _side(alice.teams.get(), alice, users["inspector"], "ours", day)
    theirs = _side(bob.teams.get(), bob, ivy, "theirs", day)
    public = kb.create_article(actor=alice.user, title="公开的退货流程", body="七天无理由退货。", slug="public-returns", audience="public")
    internal = kb.create_article(actor=alice.user, title="内部的退货流程", body="主管审批。", slug="internal-returns", audience="internal")
    for article in (public, internal):
        kb.submit_for_review(article=article, actor=alice.user)
        kb.publish(article=article, reviewer=lena.user)
    ours.article, theirs.article = Article.objects.get(pk=public.pk), Article.objects.get(pk=internal.pk)
    return World(
        ours=ours, theirs=theirs, escalation_team=TeamFactory(name="二线"), users=users, key=key,
        public_article=ours.article, internal_article=theirs.article,
        global_reply=CannedReply.objects.create(title="通用话术", shortcut="global-hi", body="您好"),
    )
