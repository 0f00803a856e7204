from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.db.models import Count, F, Q
from django.test import RequestFactory
from django.utils import timezone

from helpdesk.models import Agent, Customer
from tickets.models import Message, SlaClock, Ticket

pytestmark = pytest.mark.django_db


def test_seed_demo_makes_tickets_with_conversations_and_working_logins(capsys):
    call_command("seed_demo", tickets=60)
    out = capsys.readouterr().out
    assert Ticket.objects.count() == 60
    assert not Ticket.objects.annotate(n=Count("messages")).filter(n=0).exists()
    assert Ticket.objects.values("channel").distinct().count() >= 3
    # Every ticket has its SLA clocks, met or breached by the demo history, and none fires.
    assert not Ticket.objects.annotate(n=Count("sla_clocks")).filter(n__lt=2).exists()
    assert SlaClock.objects.filter(breached_at__isnull=False).exists()
    assert not SlaClock.objects.filter(next_check_at__lt=timezone.now()).exists()
    # Timestamps agree with the conversation.
    assert not Ticket.objects.filter(first_response_at__lt=F("created_at")).exists()
    assert not Ticket.objects.filter(Q(status__in=["solved", "closed"]) & Q(solved_at__isnull=True)).exists()
    assert not Ticket.objects.filter(status="new").exclude(assignee=None).exists()
    assert Message.objects.filter(author_kind="customer", is_internal=True).count() == 0
    for username in ["admin", "lead", "agent", "inspector", "trainer"]:
        assert username in out
        login = RequestFactory().post("/admin/login/")  # django-axes checks every login against its request
        assert authenticate(login, username=username, password="helpdesk-demo") is not None


def test_seeding_again_adds_nothing():
    call_command("seed_demo", tickets=30)
    counts = (Ticket.objects.count(), Message.objects.count(), Customer.objects.count(), Agent.objects.count())
    call_command("seed_demo", tickets=30)
    assert (Ticket.objects.count(), Message.objects.count(), Customer.objects.count(), Agent.objects.count()) == counts


def test_seed_demo_tops_up_to_the_asked_number():
    call_command("seed_demo", tickets=10)
    call_command("seed_demo", tickets=25)
    assert Ticket.objects.count() == 25


def test_seed_demo_refuses_a_negative_count():
    with pytest.raises(CommandError, match="--tickets"):
        call_command("seed_demo", tickets=-1)
