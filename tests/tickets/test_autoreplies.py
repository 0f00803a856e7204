"""Automatic replies as customers get them: an acknowledgement by email, a notice at night,
at weekends and on holidays, in their language, once per closed period, never as the first response.

The shipped rules (migration tickets.0008) use cn-workweek (Mon-Fri 09:00-18:00, Asia/Shanghai,
China's statutory holidays); the acknowledgement is for email only. 24 November 2026 is a Tuesday.
"""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection, transaction
from django.urls import reverse

from helpdesk import webhooks
from helpdesk.models import (
    BusinessCalendar,
    CalendarDate,
    Channel,
    WebhookDelivery,
    WebhookEndpoint,
)
from tickets import autoreplies, services
from tickets.forms_autoreplies import AutoReplyRuleForm
from tickets.models import AutoReplyRule, Message, SlaMetric, Ticket

from ..factories import CustomerFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
T = AutoReplyRule.Trigger
pytestmark = pytest.mark.django_db


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def open_ticket(channel: str = Channel.WEB_CHAT, language: str = "zh-hans", name: str = "王芳", **kwargs) -> Ticket:
    customer = CustomerFactory(language=language, name=name, **kwargs)
    return services.open_ticket(customer=customer, subject="订单没收到", channel=channel, body="我的快递到哪了？")


def customer_writes(ticket: Ticket) -> Message:
    return services.post_message(ticket=ticket, author_kind="customer", body="还在吗？")


def system_messages(ticket: Ticket) -> list[str]:
    return list(ticket.messages.filter(author_kind=Message.AuthorKind.SYSTEM).values_list("body", flat=True))


def sent(ticket: Ticket) -> list[tuple[str, str]]:
    return list(ticket.auto_replies.order_by("pk").values_list("trigger", "key"))


def workweek() -> BusinessCalendar:
    return BusinessCalendar.objects.get(slug="cn-workweek")


# --- acknowledgement -------------------------------------------------------------------------------


@time_machine.travel(local(2026, 11, 24, 10), tick=False)
def test_an_email_is_acknowledged_with_the_first_response_due_time():
    ticket = open_ticket(channel=Channel.EMAIL)  # email: first response within 12 h, due 22:00 today
    reply = ticket.messages.get(author_kind=Message.AuthorKind.SYSTEM)
    assert reply.body == f"您好王芳，我们已收到您的消息（工单 {ticket.reference}），客服将在 22:00 前回复您。"
    assert not reply.is_internal and reply.author_agent is None
    assert list(ticket.messages.values_list("author_kind", flat=True)) == ["customer", "system"]
    assert sent(ticket) == [(T.ACKNOWLEDGEMENT, "")]


@pytest.mark.parametrize(("language", "expected"), [("zh-hans", "11月25日 05:00"), ("en", "25 Nov 05:00")])
@time_machine.travel(local(2026, 11, 24, 17), tick=False)
def test_a_due_time_on_another_day_is_given_with_its_date_in_the_customers_language(language, expected):
    ticket = open_ticket(channel=Channel.EMAIL, language=language)  # 12 h in calendar time
    assert ticket.sla_clocks.get(metric=SlaMetric.FIRST_RESPONSE).due_at == local(2026, 11, 25, 5)
    assert expected in system_messages(ticket)[0]


@time_machine.travel(local(2026, 11, 24, 10), tick=False)
def test_only_the_first_message_is_acknowledged():
    ticket = open_ticket(channel=Channel.EMAIL)
    customer_writes(ticket)
    assert sent(ticket) == [(T.ACKNOWLEDGEMENT, "")]


@time_machine.travel(local(2026, 11, 24, 10), tick=False)
def test_chat_is_not_acknowledged_by_the_shipped_rules():
    assert system_messages(open_ticket(channel=Channel.WEB_CHAT)) == []


# --- closed: night, weekend, holiday ---------------------------------------------------------------


@time_machine.travel(local(2026, 11, 24, 23), tick=False)
def test_a_message_at_night_gets_the_outside_hours_notice_promising_the_opening():
    ticket = open_ticket()  # chat's 15-second target falls at night: the promise is 09:00
    assert system_messages(ticket) == ["您好王芳，现在是非工作时间，我们将在 11月25日 09:00 前回复您，感谢您的耐心等待。"]
    assert sent(ticket) == [(T.OUTSIDE_HOURS, "2026-11-24")]


@time_machine.travel(local(2026, 11, 24, 23), tick=False)
def test_a_notice_replaces_the_acknowledgement_on_a_first_email_at_night():
    ticket = open_ticket(channel=Channel.EMAIL)
    assert sent(ticket) == [(T.OUTSIDE_HOURS, "2026-11-24")]


@time_machine.travel(local(2026, 11, 28, 11), tick=False)  # Saturday
def test_a_weekend_message_gets_the_outside_hours_notice_for_the_period_that_began_on_friday():
    ticket = open_ticket(language="en", name="Anna")
    assert system_messages(ticket) == [
        "Hello Anna, we are closed now. We will reply by 30 Nov 09:00. Thank you for your patience."
    ]
    assert sent(ticket) == [(T.OUTSIDE_HOURS, "2026-11-27")]


@time_machine.travel(local(2026, 10, 2, 10), tick=False)
def test_a_statutory_holiday_gets_the_holiday_notice_not_the_outside_hours_one():
    ticket = open_ticket()
    assert system_messages(ticket) == ["您好王芳，节假日期间客服暂停服务，我们将在 10月8日 09:00 前回复您。"]
    assert sent(ticket) == [(T.HOLIDAY, "2026-09-30")]  # closed since 18:00 on 30 September


@time_machine.travel(local(2026, 11, 24, 11), tick=False)
def test_a_day_closed_by_hand_gets_the_holiday_notice():
    calendar = workweek()
    CalendarDate.objects.create(calendar=calendar, date=date(2026, 11, 24), kind=CalendarDate.Kind.CLOSED, name="年会")
    calendar.save()  # as the calendar admin does: the cached schedule follows updated_at
    ticket = open_ticket()
    assert sent(ticket) == [(T.HOLIDAY, "2026-11-23")]
    assert "11月25日 09:00" in system_messages(ticket)[0]


@time_machine.travel(local(2026, 10, 2, 10), tick=False)
def test_without_a_holiday_rule_a_holiday_gets_the_outside_hours_notice():
    AutoReplyRule.objects.filter(trigger=T.HOLIDAY).update(is_active=False)
    assert sent(open_ticket()) == [(T.OUTSIDE_HOURS, "2026-09-30")]


@time_machine.travel(local(2026, 11, 24, 10), tick=False)
def test_nothing_is_sent_for_a_chat_in_working_hours():
    ticket = open_ticket()
    customer_writes(ticket)
    assert system_messages(ticket) == [] and sent(ticket) == []


# --- once per closed period --------------------------------------------------------------------------


def test_one_notice_per_night_and_none_in_working_hours():
    with time_machine.travel(local(2026, 11, 24, 22), tick=False) as traveller:
        ticket = open_ticket()
        traveller.move_to(local(2026, 11, 24, 23, 30))
        customer_writes(ticket)
        traveller.move_to(local(2026, 11, 25, 2))  # after midnight: still the same night
        customer_writes(ticket)
        assert sent(ticket) == [(T.OUTSIDE_HOURS, "2026-11-24")]
        traveller.move_to(local(2026, 11, 25, 10))
        customer_writes(ticket)
        assert len(system_messages(ticket)) == 1
        traveller.move_to(local(2026, 11, 25, 20))
        customer_writes(ticket)
    assert sent(ticket) == [(T.OUTSIDE_HOURS, "2026-11-24"), (T.OUTSIDE_HOURS, "2026-11-25")]
    assert len(system_messages(ticket)) == 2


@time_machine.travel(local(2026, 11, 24, 23), tick=False)
def test_a_notice_sent_meanwhile_by_another_message_is_not_sent_again(monkeypatch):
    """The race: another transaction sent it after our check; the constraint refuses ours and the
    customer's own message still goes through."""
    ticket = open_ticket()
    monkeypatch.setattr(autoreplies, "_already_sent", lambda *args: False)
    message = customer_writes(ticket)
    assert Message.objects.filter(pk=message.pk).exists()
    assert sent(ticket) == [(T.OUTSIDE_HOURS, "2026-11-24")]
    assert len(system_messages(ticket)) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent writers: PostgreSQL")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_messages_at_once_send_one_notice(caplog):
    caplog.set_level(logging.INFO, logger="tickets.autoreplies")
    with time_machine.travel(local(2026, 11, 24, 23), tick=False):
        ticket = open_ticket(channel=Channel.PHONE)  # no notice yet: phone gets none
        Ticket.objects.filter(pk=ticket.pk).update(channel=Channel.WEB_CHAT)
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def write() -> None:
            try:
                with transaction.atomic():
                    ticket = Ticket.objects.select_related("customer").get(pk=ticket_pk)
                    message = Message.objects.create(ticket=ticket, author_kind="customer", body="在吗")
                    barrier.wait(timeout=5)  # both hold a stored message and race for the notice
                    autoreplies.on_customer_message(ticket=ticket, message=message, first=False)
            except BaseException as error:  # noqa: BLE001 - reported by the test thread
                errors.append(error)
            finally:
                connection.close()

        ticket_pk = ticket.pk
        threads = [threading.Thread(target=write) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert "sent already" in caplog.text  # neither saw the other's uncommitted row: the constraint decided
    assert sent(ticket) == [(T.OUTSIDE_HOURS, "2026-11-24")]
    assert len(system_messages(ticket)) == 1
    assert ticket.messages.filter(author_kind="customer").count() == 3


# --- whom and where --------------------------------------------------------------------------------


@time_machine.travel(local(2026, 11, 24, 23), tick=False)
def test_an_english_customer_gets_the_english_notice():
    ticket = open_ticket(language="en", name="Anna")
    assert system_messages(ticket)[0].startswith("Hello Anna, we are closed now. We will reply by 25 Nov 09:00.")


@time_machine.travel(local(2026, 11, 24, 23), tick=False)
def test_without_a_rule_in_the_customers_language_the_default_language_one_is_sent():
    AutoReplyRule.objects.filter(trigger=T.OUTSIDE_HOURS, language="en").update(is_active=False)
    ticket = open_ticket(language="en", name="Anna")
    assert system_messages(ticket) == ["您好Anna，现在是非工作时间，我们将在 11月25日 09:00 前回复您，感谢您的耐心等待。"]


@time_machine.travel(local(2026, 11, 24, 23), tick=False)
def test_a_rule_for_named_channels_applies_only_to_them_and_beats_the_general_one():
    AutoReplyRule.objects.create(
        name="WeChat at night", trigger=T.OUTSIDE_HOURS, language="zh-hans", channels=[Channel.WECHAT],
        calendar=workweek(), body="微信客服已下班，{expected_reply_time} 见。",
    )
    assert system_messages(open_ticket(channel=Channel.WECHAT)) == ["微信客服已下班，11月25日 09:00 见。"]
    assert system_messages(open_ticket(channel=Channel.WEB_CHAT))[0].startswith("您好王芳，现在是非工作时间")


@time_machine.travel(local(2026, 11, 24, 23), tick=False)
def test_phone_calls_get_no_automatic_reply():
    AutoReplyRule.objects.create(
        name="Phone", trigger=T.OUTSIDE_HOURS, language="zh-hans", channels=[Channel.PHONE], calendar=workweek(), body="x"
    )
    ticket = open_ticket(channel=Channel.PHONE)
    customer_writes(ticket)
    assert sent(ticket) == []


@time_machine.travel(local(2026, 11, 24, 23), tick=False)
def test_a_rule_on_a_24x7_calendar_is_never_outside_hours():
    AutoReplyRule.objects.filter(trigger=T.OUTSIDE_HOURS).update(calendar=BusinessCalendar.objects.get(slug="24x7"))
    assert sent(open_ticket()) == []


# --- the reply in the conversation ----------------------------------------------------------------


@time_machine.travel(local(2026, 11, 24, 23), tick=False)
def test_the_notice_is_not_the_first_response():
    ticket = open_ticket()
    customer_writes(ticket)
    ticket.refresh_from_db()
    assert ticket.first_response_at is None and ticket.status == Ticket.Status.NEW
    first = ticket.sla_clocks.get(metric=SlaMetric.FIRST_RESPONSE)
    assert first.fulfilled_at is None and first.stopped_at is None and first.next_check_at is not None
    assert not ticket.sla_clocks.filter(metric=SlaMetric.PERIODIC_UPDATE).exists()


@time_machine.travel(local(2026, 11, 24, 23), tick=False)
def test_the_notice_goes_to_the_chat_platform_as_a_message_webhook():
    WebhookEndpoint.objects.create(name="chat", url="https://chat.example.com/hook", secret="s", events=["message.created"])
    ticket = open_ticket()
    reply = ticket.messages.get(author_kind=Message.AuthorKind.SYSTEM)
    relayed = {d.payload["data"]["id"]: d.payload["data"] for d in WebhookDelivery.objects.filter(event="message.created")}
    assert relayed[reply.pk]["author"] == "system" and relayed[reply.pk]["body"] == reply.body
    assert relayed[reply.pk]["internal"] is False


@time_machine.travel(local(2026, 11, 24, 23), tick=False)
def test_an_unknown_placeholder_is_sent_as_written_instead_of_failing_the_message():
    AutoReplyRule.objects.filter(trigger=T.OUTSIDE_HOURS, language="zh-hans").update(
        body="您好{customer_name}，订单 {order_id} 已记录 {"
    )
    assert system_messages(open_ticket()) == ["您好王芳，订单 {order_id} 已记录 {"]


def test_the_rule_form_names_an_unknown_placeholder():
    form = AutoReplyRuleForm(
        data={"name": "x", "is_active": "on", "trigger": T.HOLIDAY, "language": "en", "calendar": workweek().pk,
              "body": "Hi {customer_name}, order {order_id} on {date}"}
    )
    assert not form.is_valid()
    assert "{order_id}, {date}" in form.errors["body"][0]


def test_an_administrator_edits_rules_in_the_admin_and_the_change_applies_at_once(client, ada):
    client.force_login(ada)
    rule = AutoReplyRule.objects.get(trigger=T.OUTSIDE_HOURS, language="zh-hans")
    autoreplies.active_rules()  # cached
    url = reverse("admin:tickets_autoreplyrule_change", args=[rule.pk])
    data = {"name": rule.name, "is_active": "on", "trigger": rule.trigger, "language": "zh-hans",
            "calendar": rule.calendar_id, "body": "晚上好 {nickname}"}
    response = client.post(url, data)
    assert response.status_code == 200 and "{nickname}" in response.content.decode()
    response = client.post(url, {**data, "body": "晚上好，{expected_reply_time} 见"})
    assert response.status_code == 302
    with time_machine.travel(local(2026, 11, 24, 23), tick=False):
        assert system_messages(open_ticket()) == ["晚上好，11月25日 09:00 见"]
    assert client.get(reverse("admin:tickets_autoreplyrule_changelist"), {"trigger": T.HOLIDAY}).status_code == 200
    assert client.get(reverse("admin:tickets_autoreplyrule_history", args=[rule.pk])).status_code == 200


def test_sent_replies_are_listed_read_only_by_ticket_reference(client, ada):
    with time_machine.travel(local(2026, 11, 24, 23), tick=False):
        ticket = open_ticket()
    client.force_login(ada)
    page = client.get(reverse("admin:tickets_autoreply_changelist"), {"q": ticket.reference})
    assert page.status_code == 200
    assert ticket.reference in page.content.decode() and "2026-11-24" in page.content.decode()
    assert list(page.context["cl"].result_list) == list(ticket.auto_replies.all())
    reply = ticket.auto_replies.get()
    assert client.post(reverse("admin:tickets_autoreply_change", args=[reply.pk]), {}).status_code == 403


# --- cost ------------------------------------------------------------------------------------------


def test_a_customer_message_costs_few_extra_queries(django_assert_num_queries):
    with time_machine.travel(local(2026, 11, 24, 10), tick=False) as traveller:
        ticket = open_ticket()  # warms the rule and calendar caches
        ticket = Ticket.objects.get(pk=ticket.pk)
        message = Message.objects.create(ticket=ticket, author_kind="customer", body="在吗")
        with django_assert_num_queries(0):  # working hours: nothing to send, nothing read
            assert autoreplies.on_customer_message(ticket=ticket, message=message, first=False) is None
        traveller.move_to(local(2026, 11, 24, 23))
        webhooks.subscribed_endpoint_ids("message.created")  # cached 30 s, as in a busy process
        message = Message.objects.create(ticket=ticket, author_kind="customer", body="在吗")
        # customer, already sent?, response clock, savepoint, reply, AutoReply, release
        with django_assert_num_queries(7):
            assert autoreplies.on_customer_message(ticket=ticket, message=message, first=False) is not None
        message = Message.objects.create(ticket=ticket, author_kind="customer", body="在吗")
        with django_assert_num_queries(1):  # the same night: one look at what was sent
            assert autoreplies.on_customer_message(ticket=ticket, message=message, first=False) is None
