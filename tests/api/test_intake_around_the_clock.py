"""A customer may write at any hour: every entry point, every channel, every half hour of a week.

The shipped automatic replies (migration tickets.0008, calendar cn-workweek: Mon-Fri 09:00-18:00
Asia/Shanghai with China's statutory dates) stay on. The week swept is 5-11 October 2026:
Mon-Wed are National Day holidays, Thu-Fri ordinary workdays, Saturday 10 October a make-up
workday and Sunday 11 October a weekend. The expected replies come from chinesecalendar, not from
the code under test. Whatever the hour, no request fails, the customer's message is stored once,
and each automatic reply goes out at most once (exactly the one the hour calls for).
"""

from __future__ import annotations

import itertools
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
import time_machine
from chinese_calendar import constants
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpdesk.models import Channel
from tickets.models import AutoReplyRule, Message, Ticket

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
T = AutoReplyRule.Trigger
WEEK_START = datetime(2026, 10, 5, tzinfo=SHANGHAI)  # Monday, the fifth day of the National Day holiday
HALF_HOURS = [WEEK_START + timedelta(minutes=30 * n) for n in range(7 * 48)]
CHANNELS = list(Channel.values)
TICKETS = "/api/v1/tickets/"
INGEST = "/api/v1/messages/ingest"
ENTRY_POINTS = ("ingest_new", "ticket_create", "ingest_reply", "messages_reply")
STATUSES = {"ingest_new": [201], "ticket_create": [201], "ingest_reply": [201, 200], "messages_reply": [201, 201]}
_serial = itertools.count()


def expected_triggers(at: datetime, *, channel: str, opens_ticket: bool) -> list[str]:
    """What a customer writing at `at` should get back, from chinesecalendar and the shipped rules."""
    if channel == Channel.PHONE:
        return []
    local = at.astimezone(SHANGHAI)
    day = local.date()
    if chinese_calendar.is_workday(day) and time(9) <= local.time() < time(18):
        return [T.ACKNOWLEDGEMENT] if channel == Channel.EMAIL and opens_ticket else []
    return [T.HOLIDAY] if day in constants.holidays else [T.OUTSIDE_HOURS]


def write(api, *, entry: str, channel: str, body: str) -> tuple[Ticket, list]:
    """The customer's message through `entry`; for a reply, the ticket is opened first, in the same instant."""
    n = next(_serial)
    customer = {"external_id": f"c-{n}", "name": "王芳"}
    responses = []
    if entry in ("ingest_new", "ingest_reply"):
        if entry == "ingest_reply":
            responses.append(api.post(INGEST, {
                "channel": channel, "conversation_id": f"conv-{n}", "customer": customer,
                "message": {"body": "你好", "external_id": f"m-{n}-1"},
            }, format="json"))
        responses.append(api.post(INGEST, {
            "channel": channel, "conversation_id": f"conv-{n}", "customer": customer,
            "message": {"body": body, "external_id": f"m-{n}-2"},
        }, format="json"))
    else:
        responses.append(api.post(TICKETS, {
            "subject": "订单没收到", "channel": channel, "customer": customer,
            "message": {"body": "你好" if entry == "messages_reply" else body},
        }, format="json"))
        if entry == "messages_reply" and responses[0].status_code == 201:
            reference = responses[0].json()["reference"]
            responses.append(api.post(f"{TICKETS}{reference}/messages/", {"author": "customer", "body": body}, format="json"))
    ticket = Ticket.objects.filter(customer__external_id=customer["external_id"]).first()
    return ticket, responses


def check(api, at: datetime, *, entry: str, channel: str) -> None:
    body = f"我的快递到哪了？{next(_serial)}"
    with time_machine.travel(at, tick=False):
        ticket, responses = write(api, entry=entry, channel=channel, body=body)
    where = f"{entry} on {channel} at {at.astimezone(SHANGHAI):%a %Y-%m-%d %H:%M:%S}"
    assert [r.status_code for r in responses] == STATUSES[entry], where
    assert ticket is not None, where
    assert ticket.messages.filter(author_kind=Message.AuthorKind.CUSTOMER, body=body).count() == 1, where
    returned = {"ingest_new": lambda j: j["message"], "ingest_reply": lambda j: j["message"],
                "messages_reply": lambda j: j}.get(entry)
    if returned is not None:  # the message the caller gets back is the customer's own
        assert (returned(responses[-1].json())["author"], returned(responses[-1].json())["body"]) == ("customer", body), where
    triggers = list(ticket.auto_replies.order_by("pk").values_list("trigger", flat=True))
    assert triggers == expected_triggers(at, channel=channel, opens_ticket=True), where  # each at most once
    # Every automatic reply is one public system message, and nothing else is.
    assert ticket.messages.filter(author_kind=Message.AuthorKind.SYSTEM).count() == len(triggers), where


def test_every_half_hour_of_the_national_day_week(api):
    """All 336 half hours, each with one of the 32 (entry point, channel) pairs; the pair shifts
    by one every day, so each pair meets the holidays, the working hours and the make-up day."""
    pairs = list(itertools.product(ENTRY_POINTS, CHANNELS))
    for n, at in enumerate(HALF_HOURS):
        entry, channel = pairs[(n + n // 48) % len(pairs)]
        check(api, at, entry=entry, channel=channel)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    at=st.datetimes(
        min_value=datetime(2026, 9, 14), max_value=datetime(2026, 10, 18, 23, 59, 59), timezones=st.just(SHANGHAI)
    ),
    entry=st.sampled_from(ENTRY_POINTS),
    channel=st.sampled_from(CHANNELS),
)
def test_any_instant_around_mid_autumn_and_national_day_on_any_channel_and_entry_point(api, at, entry, channel):
    """Any second from 14 September to 18 October 2026: the make-up Sunday 20 September, the
    Mid-autumn and National Day holidays, the make-up Saturday 10 October. Each example uses its
    own customer and conversation, so examples sharing the test's transaction do not meet."""
    check(api, at, entry=entry, channel=channel)
