"""Operations reports on PostgreSQL at 1,000,000 tickets; prints its figures.

A fresh database filled in SQL: 20 teams, 300 agents (15 a team), 200,000 customers, ~30
categories (the 21 the migrations ship and 9 more), and N tickets over the 400 days up to now
(three times as many a day at the end as at the start, peaks at 10-11, 14-15 and 20-21 local
time), on 8 channels; about 85% solved or closed, first responses, agent work time, public
replies 0-4 and reopens mostly 0; two SLA clocks a ticket (first response and resolution, met or
breached), escalations for ~5% of tickets, ratings for ~20% of solved tickets, QA reviews for
~5% (on the default scorecard). No messages: the reports never read them. Indexes other than the
constraints' are dropped while filling and rebuilt after, as a restore does; then VACUUM ANALYZE.
Rows go in in time order (tickets by created_at, clocks by ticket, ratings by rated_at), as live
traffic writes them: physical order decides how many pages a month's range reads.

Then, in this process, `tickets.reports.summary()` for the last full calendar month: overall and
with a team, channel, agent and category filter (the busiest of each), p50/p95 over R runs after
2 warm-ups, and the SQL queries of one call; and the dashboard page if its URL answers. A case
over 1 s gets EXPLAIN (ANALYZE, BUFFERS) of its slowest queries.

Usage: .venv/bin/python bench/reports.py [--tickets 1000000] [--runs 20] [--reuse] [--database-url URL]
Exits non-zero when the month has no tickets, the dashboard answers other than 200 (or 404: not
built), or fewer timings than --runs were taken.
Needs PostgreSQL at --database-url (default $BENCH_POSTGRES_URL or postgres://postgres@127.0.0.1:5432/helpdesk_reportbench,
dropped and made anew; --reuse times an already filled one).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date, timedelta
from typing import Any, Callable

import _common  # bench/ is on the path when a benchmark runs
import _postgres

ROOT = _postgres.ROOT
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/helpdesk_reportbench"
URL = DEFAULT_URL  # main() sets both from --database-url
ENV = _postgres.bench_env(URL)
TEAMS, AGENTS_PER_TEAM, DAYS = 20, 15, 400
LIMIT_MS = 1000.0
TABLES = ("tickets_ticket", "tickets_slaclock", "tickets_escalation", "tickets_csat", "qa_review", "helpdesk_customer")
EXTRA_CATEGORIES = ("invoice", "warranty", "installation", "membership", "points", "address_change",
                    "order_cancel", "stock", "price_protect")
# Share of tickets by hour of the local day, and by channel (weights, not percentages).
HOURS = (2, 1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 6, 7, 9, 9, 8, 6, 5, 6, 8, 9, 6, 4)
CHANNELS = {"web_chat": 25, "app_chat": 20, "wechat": 20, "phone": 12, "email": 10, "weibo": 5, "douyin": 5, "other": 3}
PRIORITIES = {"low": 10, "normal": 65, "high": 20, "urgent": 5}


def fresh_database() -> None:
    _postgres.fresh_database(URL, ENV)


def sql(statement: str, params: Any = None) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def lookup(weights: dict[str, int] | tuple[int, ...]) -> str:
    """A SQL array with each value repeated by its weight: indexed by a random number, it draws by weight."""
    pairs = weights.items() if isinstance(weights, dict) else enumerate(weights)
    values = [f"'{value}'" if isinstance(value, str) else str(value) for value, w in pairs for _ in range(w)]
    return f"ARRAY[{', '.join(values)}]"


def pick(array: str, u: str) -> str:
    return f"({array})[1 + floor({u} * array_length({array}, 1))::int]"


def step(label: str, function: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = function()
    print(f"  {label:<44} {time.perf_counter() - started:7.1f} s", flush=True)
    return result


def drop_indexes() -> list[str]:
    """Drop every index no constraint owns on the big tables; return their definitions to rebuild."""
    rows = sql(
        """SELECT i.indexname, i.indexdef FROM pg_indexes i
           WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.indexname))::regclass
                                                           AND c.contype IN ('p', 'u', 'x'))""",
        [list(TABLES)],
    )
    for name, _ in rows:
        sql(f'DROP INDEX "{name}"')
    return [definition for _, definition in rows]


def fill(tickets: int) -> None:
    from django.conf import settings

    zone = settings.TIME_ZONE
    customers = max(1000, tickets // 5)
    sql("SET synchronous_commit = off")
    sql("SET maintenance_work_mem = '512MB'")
    sql("SET work_mem = '64MB'")
    # Rows are consistent by construction; skipping the per-row foreign-key triggers halves the fill.
    sql("SET session_replication_role = replica")
    sql("SELECT setseed(0.42)")
    definitions = step("drop non-constraint indexes", drop_indexes)

    def people() -> None:
        sql(f"""INSERT INTO helpdesk_team (name, description, handover_target_seconds, created_at)
                SELECT 'Team ' || lpad(g::text, 2, '0'), '', 14400, now() FROM generate_series(1, {TEAMS}) g""")
        sql(f"""INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
                SELECT '!', false, 'agent' || g, '', '', '', true, true, now()
                FROM generate_series(1, {TEAMS * AGENTS_PER_TEAM}) g""")
        # Agent a is in team 1 + (a - 1) % 20, so a ticket of team t goes to t + 20k.
        sql("""INSERT INTO helpdesk_agent (user_id, display_name, max_concurrent, presence, presence_changed_at)
               SELECT u.id, 'Agent ' || u.id, 40, 'offline', now() FROM auth_user u
               WHERE u.username LIKE 'agent%' ORDER BY u.id""")
        sql(f"""INSERT INTO helpdesk_agent_teams (agent_id, team_id)
                SELECT a.id, 1 + (a.id - 1) % {TEAMS} FROM helpdesk_agent a""")
        teams, agents = sql("SELECT (SELECT max(id) FROM helpdesk_team), (SELECT max(id) FROM helpdesk_agent)")[0]
        assert (teams, agents) == (TEAMS, TEAMS * AGENTS_PER_TEAM), "team and agent ids must be 1..N on a fresh database"
        sql(f"""INSERT INTO helpdesk_customer (external_id, name, phone, email, tier, language, first_seen_at, created_at)
                SELECT '', '客户 ' || g, '137' || lpad(g::text, 8, '0'), '', 'standard', 'zh-hans', now(), now()
                FROM generate_series(1, {customers}) g""")
        values = ", ".join(f"('{code}', '{code}', '{code}', {90 + i}, true, '')" for i, code in enumerate(EXTRA_CATEGORIES))
        sql(f"INSERT INTO tickets_category (code, name, name_en, position, is_active, minimum_priority) VALUES {values}")

    step(f"teams, agents, {customers:,} customers, categories", people)
    categories = [pk for (pk,) in sql("SELECT id FROM tickets_category ORDER BY position, id")]
    category_array = f"ARRAY{categories}"
    hours, channels, priorities = lookup(HOURS), lookup(CHANNELS), lookup(PRIORITIES)
    statuses = lookup({"new": 2, "open": 5, "pending": 2, "on_hold": 1})

    def ticket_rows() -> None:
        # Day: density grows linearly to 3x over the 400 days (inverse CDF of 1 + 2t). Hour: by HOURS,
        # in local time. Resolution log-uniform from 10 minutes to 3.4 days; first response from
        # 20 s to 2.2 h. The inner SELECTs keep each random() drawn once per row (volatile
        # functions stop PostgreSQL from inlining them).
        sql(f"""
        INSERT INTO tickets_ticket (subject, external_id, conversation_id, customer_id, channel, category_id, priority,
            status, team_id, assignee_id, created_at, updated_at, first_response_at, last_customer_message_at,
            solved_at, closed_at, status_changed_at, requester_wait_seconds, agent_work_seconds, public_replies, reopens)
        SELECT '工单 ' || g, '', '', customer, channel, category, priority,
               CASE WHEN solved IS NULL THEN open_status WHEN solved < now() - interval '4 days' THEN 'closed' ELSE 'solved' END,
               team, CASE WHEN solved IS NULL AND open_status = 'new' THEN NULL ELSE team + {TEAMS} * agent_k END,
               created, coalesce(solved + interval '4 days', solved, first_response, created), first_response, created,
               solved, CASE WHEN solved < now() - interval '4 days' THEN solved + interval '4 days' END,
               coalesce(solved, first_response, created), work, work, replies, reopens
        FROM (
            SELECT g, customer, channel, category, priority, open_status, team, agent_k, created, solved,
                   CASE WHEN u_fr_any < 0.95 AND created + fr <= now() THEN least(created + fr, coalesce(solved, created + fr)) END
                       AS first_response,
                   CASE WHEN u_work < 0.85 AND (solved IS NOT NULL OR u_work < 0.5)
                        THEN least(60 + floor(u_work2 * 2400), floor(res * 0.8))::int ELSE 0 END AS work,
                   CASE WHEN solved IS NULL THEN floor(u_rep * 3)::int
                        ELSE (ARRAY[0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 4])[1 + floor(u_rep * 20)::int] END
                       AS replies,
                   CASE WHEN solved IS NULL OR u_reo < 0.9 THEN 0 WHEN u_reo < 0.98 THEN 1 ELSE 2 END AS reopens
            FROM (
                SELECT g, customer, channel, category, priority, open_status, team, agent_k, created, res, fr,
                       CASE WHEN u_status < 0.87 AND created + res * interval '1 second' < now()
                            THEN created + res * interval '1 second' END AS solved,
                       u_fr_any, u_work, u_work2, u_rep, u_reo
                FROM (
                    SELECT g, customer, channel, category, priority, open_status, team, agent_k,
                           CASE WHEN c > now() THEN c - interval '1 day' ELSE c END AS created,
                           600 * exp(u_res * 6.2) AS res, 20 * exp(u_fr * 6) * interval '1 second' AS fr,
                           u_status, u_fr_any, u_work, u_work2, u_rep, u_reo
                    FROM (
                        SELECT g,
                               1 + floor(random() * {customers})::int AS customer,
                               {pick(channels, 'random()')} AS channel,
                               CASE WHEN random() < 0.1 THEN NULL
                                    ELSE ({category_array})[1 + floor(power(random(), 1.8) * {len(categories)})::int] END AS category,
                               {pick(priorities, 'random()')} AS priority,
                               {pick(statuses, 'random()')} AS open_status,
                               1 + floor(power(random(), 1.3) * {TEAMS})::int AS team,
                               floor(power(random(), 1.5) * {AGENTS_PER_TEAM})::int AS agent_k,
                               ((date_trunc('day', now() AT TIME ZONE '{zone}')
                                 - floor((1 - (sqrt(1 + 8 * random()) - 1) / 2) * {DAYS}) * interval '1 day'
                                 + {pick(hours, 'random()')} * interval '1 hour'
                                 + random() * interval '1 hour') AT TIME ZONE '{zone}') AS c,
                               random() AS u_res, random() AS u_fr, random() AS u_status, random() AS u_fr_any,
                               random() AS u_work, random() AS u_work2, random() AS u_rep, random() AS u_reo
                        FROM generate_series(1, {tickets}) g
                    ) r
                ) d
            ) s
        ) t
        ORDER BY created""")

    step(f"{tickets:,} tickets", ticket_rows)

    def clocks() -> None:
        # First response: 30 minutes (5 on chats); resolution: 24 hours. Met when fulfilled by the
        # due time, else breached at due; clocks still inside their target keep running.
        sql("""
        INSERT INTO tickets_slaclock (ticket_id, metric, target_seconds, started_at, due_at, fulfilled_at, breached_at,
                                      escalation_level)
        SELECT id, metric, target, created_at, created_at + target * interval '1 second', done,
               CASE WHEN coalesce(done, now()) > created_at + target * interval '1 second'
                    THEN created_at + target * interval '1 second' END, 0
        FROM (SELECT t.id, m.metric, t.created_at,
                     CASE WHEN m.metric = 'resolution' THEN t.solved_at ELSE t.first_response_at END AS done,
                     CASE WHEN m.metric = 'resolution' THEN 86400
                          WHEN t.channel IN ('web_chat', 'app_chat', 'wechat') THEN 300 ELSE 1800 END AS target
              FROM tickets_ticket t CROSS JOIN (VALUES ('first_response'), ('resolution')) m(metric)) c
        ORDER BY id, metric""")

    step("SLA clocks (2 a ticket)", clocks)

    def escalations() -> None:
        # Level 1 at the breach for one breached resolution clock in four (about 5% of tickets),
        # level 2 an hour later for a fifth of those, a warning before some; manual hand-overs on 0.5%.
        sql("""
        INSERT INTO tickets_escalation (ticket_id, clock_id, kind, level, reason, created_at)
        SELECT ticket_id, id, 'automatic', level, '', breached_at + (level - 1) * interval '1 hour'
        FROM tickets_slaclock k, LATERAL (VALUES (0), (1), (2)) v(level)
        WHERE k.metric = 'resolution' AND k.breached_at IS NOT NULL AND k.ticket_id % 4 = 0
          AND (level = 1 OR (level = 2 AND k.ticket_id % 20 = 0) OR (level = 0 AND k.ticket_id % 12 = 0))
        ORDER BY 6""")
        sql(f"""
        INSERT INTO tickets_escalation (ticket_id, kind, level, from_team_id, to_team_id, reason, created_at, returned_at)
        SELECT id, 'manual', 0, team_id, 1 + team_id % {TEAMS}, '', created_at + interval '2 hours',
               coalesce(solved_at, created_at + interval '3 hours')
        FROM tickets_ticket WHERE id % 200 = 7 ORDER BY 7""")

    step("escalations", escalations)

    def ratings() -> None:
        sql("""
        INSERT INTO tickets_csat (ticket_id, stars, comment, rated_at, source, agent_id, team_id)
        SELECT id, (ARRAY[1, 2, 3, 3, 4, 4, 4, 5, 5, 5, 5, 5])[1 + (id * 7) % 12], '', least(rated, now()), 'survey',
               assignee_id, team_id
        FROM (SELECT id, assignee_id, team_id, solved_at + (id % 1440) * interval '1 minute' AS rated
              FROM tickets_ticket WHERE solved_at IS NOT NULL AND id % 5 = 2) s
        ORDER BY rated""")

    step("CSAT (20% of solved)", ratings)

    def reviews() -> None:
        version = sql("""SELECT v.id FROM qa_scorecardversion v JOIN qa_scorecard s ON s.id = v.scorecard_id
                         WHERE s.slug = 'standard' ORDER BY v.number DESC LIMIT 1""")[0][0]
        sql(f"""
        INSERT INTO qa_review (ticket_id, agent_id, scorecard_version_id, status, score, strengths, shortcomings, coaching,
                               assigned_at, submitted_at)
        SELECT id, assignee_id, {version}, CASE WHEN submitted <= now() THEN 'submitted' ELSE 'assigned' END,
               CASE WHEN submitted <= now() THEN 60 + (id * 37) % 4001 / 100.0 END, '', '', '', assigned,
               CASE WHEN submitted <= now() THEN submitted END
        FROM (SELECT id, assignee_id, solved_at + interval '1 day' AS assigned,
                     solved_at + interval '1 day' + (id % 72) * interval '1 hour' AS submitted
              FROM tickets_ticket WHERE solved_at IS NOT NULL AND assignee_id IS NOT NULL AND id % 17 = 3) s
        ORDER BY assigned""")

    step("QA reviews (~5%)", reviews)
    sql("SET session_replication_role = origin")

    def rebuild() -> None:
        for definition in definitions:
            sql(definition)

    step(f"rebuild {len(definitions)} indexes", rebuild)
    step("VACUUM ANALYZE", lambda: sql("VACUUM ANALYZE"))


def describe() -> None:
    (total, solved, first, work, by_status) = sql("""
        SELECT count(*), count(solved_at), count(first_response_at), count(*) FILTER (WHERE agent_work_seconds > 0),
               (SELECT string_agg(status || ' ' || n, ', ' ORDER BY n DESC)
                FROM (SELECT status, count(*) n FROM tickets_ticket GROUP BY status) s)
        FROM tickets_ticket""")[0]
    bad = sql("""SELECT count(*) FROM tickets_ticket WHERE solved_at < created_at OR first_response_at < created_at
                 OR created_at > now() OR solved_at > now()""")[0][0]
    counts = {t: sql(f"SELECT count(*) FROM {t}")[0][0] for t in ("tickets_slaclock", "tickets_escalation", "tickets_csat", "qa_review")}
    print(f"  tickets {total:,} ({by_status}); solved_at {solved / total:.0%}, first response {first / total:.0%}, "
          f"work time {work / total:.0%}; inconsistent rows: {bad}")
    print("  " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))


# --- timing --------------------------------------------------------------------------------


def last_full_month(today: date) -> tuple[date, date]:
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def timed(function: Callable[[], Any], runs: int) -> tuple[float, float, float, list[dict[str, str]]]:
    """p50, p95 and worst in ms over `runs` calls after 2 warm-ups; the queries of one more call."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):
        function()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        timings.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as captured:
        function()
    _common.measured(timings, runs, "timings")
    timings.sort()
    p95 = timings[min(len(timings) - 1, max(0, int(round(len(timings) * 0.95)) - 1))]
    return statistics.median(timings), p95, timings[-1], list(captured.captured_queries)


def explain(queries: list[dict[str, str]], top: int = 3) -> None:
    from django.db import connection

    slowest = sorted(queries, key=lambda q: float(q["time"]), reverse=True)[:top]
    for query in slowest:
        print(f"\n  -- {float(query['time']) * 1000:.0f} ms: {query['sql'][:400]}{'…' if len(query['sql']) > 400 else ''}")
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
            for (line,) in cursor.fetchall():
                print("     " + line)


def sql_ms(queries: list[dict[str, str]]) -> float:
    """Time spent in SQL during the captured call (the rest is Python and rendering)."""
    return sum(float(q["time"]) for q in queries) * 1000


def slowest_lines(queries: list[dict[str, str]], top: int = 3) -> str:
    slowest = sorted(queries, key=lambda q: float(q["time"]), reverse=True)[:top]
    return "; ".join(f"{float(q['time']) * 1000:.0f} ms {q['sql'][:90]}" for q in slowest)


def busiest(column: str, start: Any, end: Any) -> tuple[Any, int]:
    """The value of `column` with the most tickets created in the range: the heaviest filter."""
    from django.db.models import Count

    from tickets.models import Ticket

    return (
        Ticket.objects.filter(created_at__gte=start, created_at__lt=end).exclude(**{column: None})
        .values_list(column).annotate(n=Count("pk")).order_by("-n")[0]
    )


def bench(runs: int) -> None:
    from django.contrib.auth.models import User
    from django.test import Client
    from django.utils import timezone

    from tickets import reports

    start, end = last_full_month(timezone.localdate())
    span = reports.period(start, end)
    low, high = span.bounds
    team, team_n = busiest("team_id", low, high)
    channel, channel_n = busiest("channel", low, high)
    agent, agent_n = busiest("assignee_id", low, high)
    category, category_n = busiest("category_id", low, high)
    month_n = reports.Ticket.objects.filter(created_at__gte=low, created_at__lt=high).count()
    _common.require(month_n, 1, f"tickets created from {start} to {end}")
    print(f"\nsummary() for {start} to {end} ({month_n:,} tickets created), {runs} runs after 2 warm-ups")
    cases = [
        ("overall", reports.Filters(), month_n),
        (f"team={team}", reports.Filters(team=team), team_n),
        (f"channel={channel}", reports.Filters(channel=channel), channel_n),
        (f"agent={agent}", reports.Filters(agent=agent), agent_n),
        (f"category={category}", reports.Filters(category=category), category_n),
    ]
    results = []
    print(f"{'case':<28} {'tickets':>9} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9} {'queries':>8} {'SQL ms':>8}")
    for label, filters, n in cases:
        p50, p95, worst, queries = timed(lambda f=filters: reports.summary(start=start, end=end, filters=f), runs)
        results.append((label, p50, p95, queries))
        print(f"{'summary ' + label:<28} {n:>9,} {p50:9.1f} {p95:9.1f} {worst:9.1f} {len(queries):8d} {sql_ms(queries):8.1f}",
              flush=True)

    admin = User.objects.filter(username="reportadmin").first() or User.objects.create_superuser("reportadmin", "", "x")
    client = Client()
    client.force_login(admin)
    url = f"/admin/tickets/ticket/reports/?from={start}&to={end}"
    response = client.get(url, secure=True)
    if response.status_code == 404:
        print(f"{'dashboard':<28} skipped: {url} answers 404 (not built yet)")
    elif response.status_code != 200:
        sys.exit(f"FAILED: {url} answers {response.status_code}")
    else:
        def page() -> None:
            if (status := client.get(url, secure=True).status_code) != 200:
                sys.exit(f"FAILED: {url} answered {status}")

        p50, p95, worst, queries = timed(page, runs)
        results.append(("dashboard", p50, p95, queries))
        print(f"{'dashboard (admin page)':<28} {month_n:>9,} {p50:9.1f} {p95:9.1f} {worst:9.1f} "
              f"{len(queries):8d} {sql_ms(queries):8.1f}")

    print("\nslowest queries of one call:")
    for label, _, _, queries in results:
        print(f"  {label}: {slowest_lines(queries)}")
    over = [(label, p95, queries) for label, _, p95, queries in results if p95 > LIMIT_MS]
    for label, p95, queries in over:
        print(f"\n== {label}: p95 {p95:.0f} ms is over {LIMIT_MS:.0f} ms; EXPLAIN (ANALYZE, BUFFERS) of its slowest queries")
        explain(queries)
    if not over:
        print(f"\nevery case is within {LIMIT_MS:.0f} ms at p95")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="time the database a previous run filled")
    _common.add_target_options(parser, database=DEFAULT_URL)
    args = parser.parse_args()
    if args.runs < 1 or args.tickets < 1:
        sys.exit("--runs and --tickets must be >= 1")
    global URL, ENV
    URL, ENV = args.database_url, _postgres.bench_env(args.database_url)
    with _common.machine():
        run(args)


def run(args: argparse.Namespace) -> None:
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    if not args.reuse:
        started = time.perf_counter()
        fresh_database()
        print(f"fresh database and migrate: {time.perf_counter() - started:.1f} s")
    import django

    django.setup()
    if not args.reuse:
        print(f"fill of {args.tickets:,} tickets:")
        started = time.perf_counter()
        fill(args.tickets)
        print(f"filled in {time.perf_counter() - started:.1f} s")
    describe()
    bench(args.runs)


if __name__ == "__main__":
    main()
