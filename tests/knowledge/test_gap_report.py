"""The gap report: searches that found nothing and busy ticket categories without a good
article, checked against numbers worked out by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from knowledge import queries, services
from knowledge.models import Article, SearchLog
from tests.factories import CategoryFactory, TicketFactory

pytestmark = pytest.mark.django_db
GAPS = reverse("admin:knowledge_gap_report")


def searched(normalized: str, *, days_ago: float, results: int = 0, source: str = "admin", times: int = 1) -> None:
    for _ in range(times):
        SearchLog.objects.create(
            query=normalized.replace(" ", "") or "的", normalized=normalized, results=results, source=source,
            created_at=timezone.now() - timedelta(days=days_ago),
        )


@pytest.fixture
def searches(db) -> None:
    searched("退款 到账", days_ago=1, times=3)
    searched("退款 到账", days_ago=40)  # before the period
    searched("退款 到账", days_ago=2, results=2)  # found something
    searched("手环 连接", days_ago=29, times=2)
    searched("发票", days_ago=5, source="api")
    searched("", days_ago=1, times=5)  # only stopwords: nothing to group


def tickets(category, *, recent: int, old: int = 0) -> None:
    now = timezone.now()
    for n in range(recent):
        TicketFactory(category=category, created_at=now - timedelta(days=n % 29))
    for _ in range(old):
        TicketFactory(category=category, created_at=now - timedelta(days=45))


def article_on(category, author, reviewer, *, helpful: int = 0, unhelpful: int = 0, live: bool = True,
               archived: bool = False) -> Article:
    article = services.create_article(actor=author, title=f"关于{category.name}", ticket_categories=[category])
    if live:
        services.submit_for_review(article=article, actor=author)
        article = services.publish(article=article, reviewer=reviewer)
    if archived:
        article = services.archive(article=article, actor=reviewer)
    # The counters are the services' (record_feedback); set here to the verdicts the case needs.
    Article.objects.filter(pk=article.pk).update(helpful_count=helpful, unhelpful_count=unhelpful)
    return article


@pytest.fixture
def categories(alice, lena) -> dict:
    made = {name: CategoryFactory(name=name) for name in ("无文章", "差评文章", "好文章", "草稿", "已归档", "冷门")}
    tickets(made["无文章"], recent=5, old=1)
    tickets(made["差评文章"], recent=4)
    article_on(made["差评文章"], alice.user, lena.user, helpful=1, unhelpful=3)
    tickets(made["好文章"], recent=3)
    article_on(made["好文章"], alice.user, lena.user, helpful=2, unhelpful=2)  # as often helpful as not: good
    article_on(made["好文章"], alice.user, lena.user, helpful=0, unhelpful=5)
    tickets(made["草稿"], recent=2)
    article_on(made["草稿"], alice.user, lena.user, live=False)
    tickets(made["已归档"], recent=2)
    article_on(made["已归档"], alice.user, lena.user, helpful=9, archived=True)
    tickets(made["冷门"], recent=0, old=3)
    return made


def test_the_most_frequent_searches_without_results_come_first(searches):
    rows = [(row["normalized"], row["searches"]) for row in queries.unanswered_searches(days=30)]
    assert rows == [("退款 到账", 3), ("手环 连接", 2), ("发票", 1)]


def test_the_period_and_source_narrow_the_searches(searches):
    assert [(r["normalized"], r["searches"]) for r in queries.unanswered_searches(days=60)][0] == ("退款 到账", 4)
    assert [(r["normalized"], r["searches"]) for r in queries.unanswered_searches(days=3)] == [("退款 到账", 3)]
    assert [r["normalized"] for r in queries.unanswered_searches(days=30, source="api")] == ["发票"]


def test_the_searches_are_the_top_20(db):
    for n in range(25):
        searched(f"词{n:02d}", days_ago=1, times=1 + n % 3)
    rows = list(queries.unanswered_searches(days=30))
    assert len(rows) == 20
    assert [r["searches"] for r in rows] == sorted((r["searches"] for r in rows), reverse=True)


def test_busy_categories_without_a_good_live_article_are_listed_by_tickets(categories):
    rows = [(c.name, c.recent_tickets, c.live_articles) for c in queries.uncovered_categories(days=30)]
    assert rows == [("无文章", 5, 0), ("差评文章", 4, 1), ("草稿", 2, 0), ("已归档", 2, 0)]


def test_a_longer_period_counts_older_tickets(categories):
    rows = {c.name: c.recent_tickets for c in queries.uncovered_categories(days=60)}
    assert rows["无文章"] == 6 and rows["冷门"] == 3


def test_the_report_takes_two_queries_however_much_traffic(searches, categories, django_assert_num_queries):
    with django_assert_num_queries(2):
        report = queries.gap_report(days=30)
    assert len(report.searches) == 3 and len(report.categories) == 4


def test_the_report_refuses_a_period_out_of_range(db):
    with pytest.raises(ValueError):
        queries.gap_report(days=0)


# --- the page -------------------------------------------------------------------------------


def test_leads_read_the_gap_report_with_the_numbers(client, lena, searches, categories):
    client.force_login(lena.user)
    response = client.get(GAPS)
    assert response.status_code == 200
    page = response.content.decode()
    searches_table = page.split('id="gap-searches"')[1].split("</table>")[0]
    assert "退款 到账" in searches_table and '<td class="kb-num">3</td>' in searches_table
    categories_table = page.split('id="gap-categories"')[1].split("</table>")[0]
    assert "无文章" in categories_table and ">5</a>" in categories_table and "好文章" not in categories_table
    assert f"?ticket_categories={categories['无文章'].pk}" in categories_table


@pytest.mark.parametrize("persona", ["tom", "ada"])
def test_trainers_and_administrators_read_it_too(client, request, persona):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    assert client.get(GAPS, {"days": 7}).status_code == 200


def test_agents_do_not_see_the_report_nor_its_link(client, alice, lena):
    client.force_login(alice.user)
    assert client.get(GAPS).status_code == 403
    assert GAPS not in client.get(reverse("admin:knowledge_article_changelist")).content.decode()
    client.force_login(lena.user)
    assert GAPS in client.get(reverse("admin:knowledge_article_changelist")).content.decode()


@pytest.mark.parametrize("days", ["0", "367", "abc"])
def test_a_bad_period_is_a_form_error_not_a_crash(client, lena, days):
    client.force_login(lena.user)
    response = client.get(GAPS, {"days": days})
    assert response.status_code == 400
    assert "days" in response.context["form"].errors


def test_the_page_costs_the_same_queries_with_more_traffic(client, lena, searches, categories, django_assert_max_num_queries):
    client.force_login(lena.user)
    client.get(GAPS)
    with django_assert_max_num_queries(8):  # session, user, permissions, the two halves, …
        client.get(GAPS)
