"""The supervisor's live view on PostgreSQL at call-centre size; prints its figures.

A fresh database filled in SQL: 500 agents in 25 teams, 20,000 open tickets (one in ten in
the queue, the rest held; a customer message each and an agent reply on about half) with a
running resolution clock each (some warned, some breached), 100,000 solved and closed tickets
over the last 30 days (some created today, with first responses), 20,000 ratings of which
2,000 today. Then ANALYZE, and p50/p95 over N runs of `tickets.live.live_view` and of the page
and its JSON through Django's test client, as an administrator (25 teams) and as a team lead
(one team), with the query count of each.

Usage: .venv/bin/python bench/live_view.py [--runs 50] [--database-url URL]
Needs PostgreSQL at --database-url (default $BENCH_POSTGRES_URL or
postgres://postgres@127.0.0.1:5432/helpdesk_livebench, dropped and made anew). Exits non-zero on a
page that is not a 200, an empty view, or fewer timings than --runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import _common  # bench/ is on the path when a benchmark runs
import _postgres

ROOT = _postgres.ROOT
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/helpdesk_livebench"
URL = DEFAULT_URL  # main() sets both from --database-url
ENV = _postgres.bench_env(URL)
TEAMS, AGENTS, OPEN, HISTORY = 25, 500, 20_000, 100_000


def fresh_database() -> None:
    _postgres.fresh_database(URL, ENV)


def sql(statement: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement)


def fill() -> None:
    sql(f"""INSERT INTO helpdesk_team (name, description, handover_target_seconds, created_at)
            SELECT 'Team ' || lpad(g::text, 2, '0'), '', 14400, now() FROM generate_series(1, {TEAMS}) g""")
    sql(f"""INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
            SELECT '!', false, 'agent' || g, '', '', '', true, true, now() FROM generate_series(1, {AGENTS}) g""")
    # Agent g is in team 1 + g % 25; one agent in five is also in the next team.
    sql("""INSERT INTO helpdesk_agent (user_id, display_name, max_concurrent, presence, presence_changed_at)
           SELECT u.id, 'Agent ' || u.id, 40 + u.id % 20,
                  (ARRAY['online', 'online', 'online', 'busy', 'away', 'offline'])[1 + u.id % 6], now()
           FROM auth_user u WHERE u.username LIKE 'agent%'""")
    sql(f"""INSERT INTO helpdesk_agent_teams (agent_id, team_id)
            SELECT a.id, t.id FROM helpdesk_agent a JOIN helpdesk_team t ON t.id = 1 + a.id % {TEAMS}
            UNION
            SELECT a.id, t.id FROM helpdesk_agent a JOIN helpdesk_team t ON t.id = 1 + (a.id + 1) % {TEAMS}
            WHERE a.id % 5 = 0""")
    sql("""INSERT INTO helpdesk_customer (external_id, name, phone, email, tier, language, first_seen_at, created_at)
           SELECT '', '客户 ' || g, '137' || lpad(g::text, 8, '0'), '', 'standard', 'zh-hans', now(), now()
           FROM generate_series(1, 5000) g""")
    # Open tickets: team 1 + g % 25; one in ten unassigned (the queue), the others held by an
    # agent of that team (agent ids congruent to the team modulo 25).
    sql(f"""INSERT INTO tickets_ticket (subject, external_id, conversation_id, customer_id, channel, priority, status,
                team_id, assignee_id, created_at, updated_at, last_customer_message_at, first_response_at,
                requester_wait_seconds, agent_work_seconds, public_replies, reopens)
            SELECT '工单 ' || g, '', '', 1 + g % 5000, 'web_chat', 'normal', CASE WHEN g % 3 = 0 THEN 'new' ELSE 'open' END,
                   1 + g % {TEAMS},
                   CASE WHEN g % 10 = 1 THEN NULL ELSE g % {TEAMS} + {TEAMS} * (1 + (g / {TEAMS}) % ({AGENTS} / {TEAMS} - 1)) END,
                   now() - (g % 480) * interval '1 minute', now(),
                   now() - (g % 300) * interval '1 minute',
                   CASE WHEN g % 3 = 0 THEN NULL ELSE now() - (g % 480) * interval '1 minute' + interval '2 minutes' END,
                   0, 0, 0, 0
            FROM generate_series(1, {OPEN}) g""")
    # History: solved and closed over the last 30 days, some created today.
    sql(f"""INSERT INTO tickets_ticket (subject, external_id, conversation_id, customer_id, channel, priority, status,
                team_id, assignee_id, created_at, updated_at, first_response_at, last_customer_message_at, solved_at,
                closed_at, requester_wait_seconds, agent_work_seconds, public_replies, reopens)
            SELECT '历史 ' || g, '', '', 1 + g % 5000, 'web_chat', 'normal', CASE WHEN g % 4 = 0 THEN 'solved' ELSE 'closed' END,
                   1 + g % {TEAMS}, 1 + g % {AGENTS}, c, c, c + (g % 900) * interval '1 second', c, c + interval '1 hour',
                   CASE WHEN g % 4 = 0 THEN NULL ELSE c + interval '2 days' END, 0, 0, 1, 0
            FROM (SELECT g, now() - (g % (30 * 24 * 60)) * interval '1 minute' AS c
                  FROM generate_series(1, {HISTORY}) g) h""")
    # Messages of open tickets: the customer's last message, and an agent reply after it on half.
    sql("""INSERT INTO tickets_message (ticket_id, author_kind, is_internal, body, attachments, sent_at, created_at, channel_message_id)
            SELECT id, 'customer', false, '你好', '[]'::jsonb, last_customer_message_at, last_customer_message_at, ''
            FROM tickets_ticket WHERE status IN ('new', 'open')
            UNION ALL
            SELECT id, 'agent', id % 4 = 1, '您好', '[]'::jsonb, last_customer_message_at + interval '1 minute',
                   last_customer_message_at + interval '1 minute', ''
            FROM tickets_ticket WHERE status IN ('new', 'open') AND id % 2 = 1""")
    # A running resolution clock per open ticket: due within ±2 hours of now, warned 30 min before.
    sql("""INSERT INTO tickets_slaclock (ticket_id, metric, target_seconds, started_at, due_at, warn_at, warned_at,
                breached_at, next_check_at, escalation_level)
           SELECT id, 'resolution', 28800, created_at, d, d - interval '30 minutes',
                  CASE WHEN d - interval '30 minutes' <= now() THEN d - interval '30 minutes' END,
                  CASE WHEN d <= now() THEN d END, now() + interval '1 minute', 0
           FROM (SELECT id, created_at, now() + ((id % 240) - 60) * interval '1 minute' AS d
                 FROM tickets_ticket WHERE status IN ('new', 'open')) o""")
    # Ratings of history tickets: 20,000, the last 2,000 today.
    sql("""INSERT INTO tickets_csat (ticket_id, stars, comment, rated_at, source, agent_id, team_id)
            SELECT id, 1 + id % 5, '', CASE WHEN rn <= 2000 THEN now() - (rn % 60) * interval '1 minute'
                                           ELSE now() - interval '1 day' - rn * interval '1 minute' END,
                   'survey', assignee_id, team_id
            FROM (SELECT id, assignee_id, team_id, row_number() OVER (ORDER BY id) AS rn
                  FROM tickets_ticket WHERE status IN ('solved', 'closed') LIMIT 20000) r""")
    sql("ANALYZE")


def personas():
    from django.contrib.auth.models import Group, User

    from helpdesk import roles

    admin = User.objects.create(username="admin", is_staff=True)
    admin.groups.add(Group.objects.get(name=roles.ADMINISTRATOR))
    lead = User.objects.get(username="agent1")  # agent 1 is in team 2 only
    lead.groups.add(Group.objects.get(name=roles.TEAM_LEAD))
    return admin, lead


def timed(function, runs: int) -> tuple[float, float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings, queries = [], 0
    function()  # warm: templates, translations, the connection
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            function()
            timings.append((time.perf_counter() - started) * 1000)
        queries = len(captured)
    _common.measured(timings, runs, "timings")
    timings.sort()
    return statistics.median(timings), timings[max(0, int(len(timings) * 0.95) - 1)], queries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    _common.add_target_options(parser, database=DEFAULT_URL)
    args = parser.parse_args()
    if args.runs < 1:
        sys.exit("--runs must be >= 1")
    global URL, ENV
    URL, ENV = args.database_url, _postgres.bench_env(args.database_url)
    with _common.machine():
        run(args.runs)


def run(runs: int) -> None:
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    fresh_database()
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.test import Client
    from django.utils import timezone

    from tickets.live import live_view
    from tickets.models import Csat, Message, SlaClock, Ticket

    started = time.perf_counter()
    fill()
    admin, lead = personas()
    print(
        f"filled in {time.perf_counter() - started:.1f} s: {TEAMS} teams, {AGENTS} agents, "
        f"{Ticket.objects.filter(status__in=['new', 'open']).count()} open of {Ticket.objects.count()} tickets, "
        f"{Message.objects.count()} messages, {SlaClock.objects.count()} clocks, {Csat.objects.count()} ratings"
    )
    print(f"{'what':<34} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}")
    for label, user in (("administrator", admin), ("team lead", lead)):
        client = Client()
        client.force_login(user)

        def data(user: User = user) -> None:
            # A fresh user object per run, as a request has: the role lookup is counted.
            live_view(User.objects.get(pk=user.pk), timezone.now())

        def page(client: Client = client, url: str = "/admin/tickets/ticket/live/") -> None:
            if (status := client.get(url, secure=True).status_code) != 200:
                sys.exit(f"FAILED: {url} answered {status}")

        def json(client: Client = client) -> None:
            page(client, "/admin/tickets/ticket/live/data.json")

        view = live_view(user, timezone.now())
        _common.require(len(view.teams), 1, f"teams in the {label}'s view")
        print(f"-- {label}: {len(view.teams)} teams, {sum(len(t.agents) for t in view.teams)} agent rows, "
              f"queue {sum(t.queue_length for t in view.teams)}, near/past SLA "
              f"{sum(t.sla_near for t in view.teams)}/{sum(t.sla_past for t in view.teams)}")
        for what, function in (("live_view()", data), ("page /admin/tickets/ticket/live/", page), ("JSON /admin/tickets/ticket/live/data.json", json)):
            p50, p95, queries = timed(function, runs)
            print(f"{what + ' (' + label + ')':<34} {p50:8.1f} {p95:8.1f} {queries:8d}")


if __name__ == "__main__":
    main()
