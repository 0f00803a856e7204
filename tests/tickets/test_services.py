from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from helpdesk.errors import DomainError
from helpdesk.models import Channel, Tag
from tickets import services
from tickets.models import Message, Ticket

from ..factories import CustomerFactory, TicketFactory

S = Ticket.Status
pytestmark = pytest.mark.django_db


def open_chat(**kwargs) -> Ticket:
    return services.open_ticket(
        customer=kwargs.pop("customer", None) or CustomerFactory(),
        subject="订单没收到",
        channel=Channel.WEB_CHAT,
        body="我的快递五天了还没到",
        **kwargs,
    )


def test_it_opens_a_ticket_with_the_customers_first_message():
    sent = timezone.now() - timedelta(minutes=3)
    ticket = open_chat(sent_at=sent, channel_message_id="wx-1")
    assert ticket.status == S.NEW
    assert ticket.reference == f"T{ticket.pk:08d}"
    assert ticket.last_customer_message_at == sent
    (message,) = ticket.messages.filter(author_kind=Message.AuthorKind.CUSTOMER)  # an automatic reply may follow
    assert (message.body, message.channel_message_id) == ("我的快递五天了还没到", "wx-1")
    assert ticket.opening_message == message
    assert ticket.history.count() == 1


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [("channel", {"channel": "fax"}), ("priority", {"priority": "asap"}), ("body", {"body": "  "}), ("subject", {"subject": ""})],
)
def test_it_refuses_a_bad_ticket_and_writes_nothing(field, kwargs):
    data = {"customer": CustomerFactory(), "subject": "s", "channel": Channel.EMAIL, "body": "b"} | kwargs
    with pytest.raises(DomainError) as error:
        services.open_ticket(**data)
    assert error.value.field == field
    assert Ticket.objects.count() == 0 and Message.objects.count() == 0


def test_the_first_public_agent_reply_is_the_first_response_and_opens_the_ticket(alice):
    ticket = open_chat()
    services.post_message(ticket=ticket, author_kind="agent", agent=alice, body="内部备注", internal=True)
    ticket.refresh_from_db()
    assert ticket.first_response_at is None and ticket.status == S.NEW

    reply_at = timezone.now()
    services.post_message(ticket=ticket, author_kind="agent", agent=alice, body="您好", sent_at=reply_at)
    services.post_message(ticket=ticket, author_kind="agent", agent=alice, body="还有问题吗")
    ticket.refresh_from_db()
    assert ticket.first_response_at == reply_at
    assert ticket.status == S.OPEN


def test_a_customer_message_wakes_a_pending_ticket_and_reopens_a_solved_one():
    ticket = TicketFactory(status=S.PENDING)
    services.post_message(ticket=ticket, author_kind="customer", body="我回来了")
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN

    ticket = services.change_status(ticket=ticket, status=S.SOLVED)
    services.post_message(ticket=ticket, author_kind="customer", body="又坏了")
    ticket.refresh_from_db()
    assert ticket.status == S.OPEN and ticket.solved_at is None


def test_a_customer_message_leaves_an_on_hold_ticket_on_hold():
    ticket = TicketFactory(status=S.ON_HOLD)
    services.post_message(ticket=ticket, author_kind="customer", body="进展如何？")
    ticket.refresh_from_db()
    assert ticket.status == S.ON_HOLD and ticket.last_customer_message_at is not None


def test_a_closed_ticket_takes_no_message():
    ticket = TicketFactory(status=S.CLOSED)
    with pytest.raises(DomainError) as error:
        services.post_message(ticket=ticket, author_kind="customer", body="hello")
    assert error.value.code == "ticket_closed"
    assert ticket.messages.count() == 0


def test_a_resent_channel_message_is_stored_once():
    ticket = open_chat()
    first = services.post_message(ticket=ticket, author_kind="customer", body="在吗", channel_message_id="m-9")
    again = services.post_message(ticket=ticket, author_kind="customer", body="在吗", channel_message_id="m-9")
    assert first.pk == again.pk
    assert ticket.messages.filter(channel_message_id="m-9").count() == 1


def test_an_agent_can_reply_and_solve_in_one_step(alice):
    ticket = open_chat()
    services.post_message(ticket=ticket, author_kind="agent", agent=alice, body="已处理", status_after=S.SOLVED)
    ticket.refresh_from_db()
    assert ticket.status == S.SOLVED and ticket.first_response_at is not None


def test_a_reply_with_an_illegal_status_is_refused_whole(alice):
    ticket = TicketFactory(status=S.SOLVED)
    with pytest.raises(DomainError):
        services.post_message(ticket=ticket, author_kind="agent", agent=alice, body="x", status_after=S.PENDING)
    assert ticket.messages.count() == 0  # the message rolled back with the refused status


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"author_kind": "customer", "body": "", }, "body"),
        ({"author_kind": "customer", "body": "x", "internal": True}, "internal"),
        ({"author_kind": "agent", "body": "x"}, "agent"),
        ({"author_kind": "robot", "body": "x"}, "author_kind"),
    ],
)
def test_it_names_the_field_of_a_bad_message(kwargs, field):
    ticket = TicketFactory(status=S.OPEN)
    with pytest.raises(DomainError) as error:
        services.post_message(ticket=ticket, **kwargs)
    assert error.value.field == field


def test_assigning_a_new_ticket_opens_it_and_is_audited(alice, lena):
    ticket = open_chat()
    services.assign_ticket(ticket=ticket, agent=alice, actor=lena.user)
    ticket.refresh_from_db()
    assert ticket.assignee == alice and ticket.status == S.OPEN
    assert ticket.history.first().history_user == lena.user


def test_update_refuses_fields_it_does_not_own():
    ticket = TicketFactory(status=S.OPEN)
    with pytest.raises(DomainError) as error:
        services.update_ticket(ticket=ticket, changes={"status": S.CLOSED})
    assert error.value.field == "status"


def test_tags_are_created_once_and_added(alice):
    ticket = TicketFactory()
    services.add_tags(ticket=ticket, names=["加急", " 加急 ", "回访"])
    services.add_tags(ticket=TicketFactory(), names=["加急"])
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["加急", "回访"]
    assert Tag.objects.filter(name="加急").count() == 1


def test_auto_close_closes_only_tickets_solved_long_enough_and_is_idempotent(settings):
    settings.TICKETS_AUTO_CLOSE_DAYS = 4
    with time_machine.travel("2026-11-01 10:00+08:00", tick=False):
        old = services.change_status(ticket=TicketFactory(status=S.OPEN), status=S.SOLVED)
    with time_machine.travel("2026-11-04 10:00+08:00", tick=False):
        recent = services.change_status(ticket=TicketFactory(status=S.OPEN), status=S.SOLVED)
    still_open = TicketFactory(status=S.OPEN)

    with time_machine.travel("2026-11-05 10:00:01+08:00", tick=False):
        assert services.close_solved_tickets() == 1
        assert services.close_solved_tickets() == 0
    old.refresh_from_db(), recent.refresh_from_db(), still_open.refresh_from_db()
    assert (old.status, recent.status, still_open.status) == (S.CLOSED, S.SOLVED, S.OPEN)
    assert old.history.first().history_change_reason == "auto_close"


def test_an_update_that_changes_nothing_writes_no_audit_row(alice):
    ticket = open_chat()
    services.assign_ticket(ticket=ticket, agent=alice)
    rows = ticket.history.count()
    services.assign_ticket(ticket=ticket, agent=alice)
    services.update_ticket(ticket=ticket, changes={})
    assert ticket.history.count() == rows


def test_a_closed_ticket_takes_no_tags_or_edits():
    ticket = TicketFactory(status=S.CLOSED)
    for call in (
        lambda: services.add_tags(ticket=ticket, names=["x"]),
        lambda: services.set_tags(ticket=ticket, tags=[]),
        lambda: services.update_ticket(ticket=ticket, changes={"priority": "high"}),
    ):
        with pytest.raises(DomainError) as error:
            call()
        assert error.value.code == "ticket_closed"
    assert not Tag.objects.filter(name="x").exists()
