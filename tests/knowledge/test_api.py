"""The knowledge-base API: who reads what (anonymous, integration key, agent), search, feedback,
canned replies, and the errors a caller can provoke."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from knowledge import services
from knowledge.models import (
    Article,
    ArticleFeedback,
    CannedReply,
    KbCategory,
    SearchLog,
)
from knowledge.rendering import to_html
from tests.factories import CustomerFactory, TicketFactory

pytestmark = pytest.mark.django_db
ARTICLES = "/api/v1/kb/articles/"
SEARCH = "/api/v1/kb/search"
CANNED = "/api/v1/canned-replies/"
PUBLIC_CALLERS = ["anonymous_api", "api"]


@pytest.fixture
def write(alice, lena):
    """Write an article as alice; published=True has lena review and publish it."""

    def make(slug: str, title: str, body: str = "", *, published: bool = True, **fields) -> Article:
        fields.setdefault("audience", "public")
        article = services.create_article(actor=alice.user, title=title, body=body, slug=slug, **fields)
        if published:
            services.submit_for_review(article=article, actor=alice.user)
            article = services.publish(article=article, reviewer=lena.user)
        return article

    return make


@pytest.fixture
def shelf(write, alice):
    """One article of each kind a public caller must or must not see."""
    write("returns", "退货流程", "签收后 7 天内可以申请退货。")
    write("internal-refunds", "内部退款审批", "退款超过 500 元需主管审批。", audience="internal")
    write("draft-only", "草稿文章", "还没有审核的内容。", published=False)
    archived = write("old-policy", "旧的退货政策", "已经作废的政策。")
    services.archive(article=archived, actor=alice.user)
    edited = write("band", "手环连接失败", "请打开蓝牙后重试。")
    services.update_article(
        article=edited, actor=alice.user, changes={"title": "手环连接失败 UNREVIEWED", "body": "未审核的秘密修改。"},
    )


def _staff(client, agent):
    client.force_login(agent.user)
    return client


# --- who reads what ------------------------------------------------------------------------


@pytest.mark.parametrize("caller", PUBLIC_CALLERS)
def test_public_callers_list_only_live_public_articles_in_their_live_version(request, caller, shelf):
    response = request.getfixturevalue(caller).get(ARTICLES)
    assert response.status_code == 200
    rows = {row["slug"]: row for row in response.json()["results"]}
    assert set(rows) == {"returns", "band"}
    assert rows["band"]["title"] == "手环连接失败"
    assert rows["band"]["status"] == "published" and rows["band"]["updated_at"] == rows["band"]["published_at"]
    text = response.content.decode()
    assert "UNREVIEWED" not in text and "内部" not in text and "草稿" not in text


def test_staff_list_every_article_but_the_archived_with_the_live_copy_where_one_exists(client, alice, shelf):
    rows = {row["slug"]: row for row in _staff(client, alice).get(ARTICLES).json()["results"]}
    assert set(rows) == {"returns", "internal-refunds", "draft-only", "band"}
    assert rows["band"]["title"] == "手环连接失败" and rows["band"]["status"] == "draft" and rows["band"]["live"] is True
    assert rows["draft-only"]["title"] == "草稿文章" and rows["draft-only"]["live"] is False
    assert rows["internal-refunds"]["audience"] == "internal"


@pytest.mark.parametrize("caller", PUBLIC_CALLERS)
def test_public_callers_get_404_for_anything_but_a_live_public_article(request, caller, shelf):
    client = request.getfixturevalue(caller)
    for slug in ("internal-refunds", "draft-only", "old-policy", "no-such-article"):
        response = client.get(f"{ARTICLES}{slug}/")
        assert response.status_code == 404, slug
        assert response.json()["error"]["code"] == "not_found"
    band = client.get(f"{ARTICLES}band/").json()
    assert band["title"] == "手环连接失败" and "请打开蓝牙后重试" in band["html"]
    assert "秘密" not in json.dumps(band, ensure_ascii=False)


def test_an_article_shows_its_html_category_tags_counts_and_times(anonymous_api, write):
    category = KbCategory.objects.create(name="售后", slug="after-sales")
    article = write("returns", "退货流程", "**七天**内退货 <script>alert(1)</script>", category=category, tags=["退货", "售后"])
    body = anonymous_api.get(f"{ARTICLES}returns/").json()
    assert body["html"] == article.live_html and "<strong>七天</strong>" in body["html"]
    assert "<script>" not in body["html"]
    assert body["category"] == {"slug": "after-sales", "name": "售后"}
    assert sorted(body["tags"]) == ["售后", "退货"]
    assert body["helpful_count"] == 0 and body["unhelpful_count"] == 0
    assert body["published_at"] and body["updated_at"] == body["published_at"]
    assert body["language"] == "zh-hans" and body["audience"] == "public"


def test_staff_read_a_never_published_draft_rendered_from_its_working_copy(client, alice, write):
    write("draft-only", "草稿文章", "第一步 **打开蓝牙**", published=False, audience="internal")
    body = _staff(client, alice).get(f"{ARTICLES}draft-only/").json()
    assert body["html"] == to_html("第一步 **打开蓝牙**") and body["live"] is False and body["status"] == "draft"


def test_staff_read_the_live_copy_of_an_article_with_an_unreviewed_edit(client, alice, shelf):
    body = _staff(client, alice).get(f"{ARTICLES}band/").json()
    assert body["title"] == "手环连接失败" and "请打开蓝牙后重试" in body["html"] and body["status"] == "draft"


def test_a_staff_member_without_the_right_to_read_articles_is_a_public_caller(client, olga, shelf):
    client.force_login(olga)
    assert {row["slug"] for row in client.get(ARTICLES).json()["results"]} == {"returns", "band"}


def test_a_personal_key_reads_what_its_owner_reads(alice, shelf):
    from rest_framework.test import APIClient

    from helpdesk.api_keys import create_api_key

    _, plain = create_api_key(name="alice's script", scope="read", user=alice.user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert "draft-only" in {row["slug"] for row in client.get(ARTICLES).json()["results"]}


# --- filters and pagination ----------------------------------------------------------------


def test_articles_filter_by_category_with_its_subcategories_tag_and_language(anonymous_api, write):
    product = KbCategory.objects.create(name="产品", slug="product")
    band = KbCategory.objects.create(name="手环", slug="band", parent=product)
    other = KbCategory.objects.create(name="售后", slug="after-sales")
    write("a", "产品总览", category=product, tags=["概览"])
    write("b", "手环配对", category=band, tags=["蓝牙"], language="en")
    write("c", "退货", category=other, tags=["蓝牙"])

    def slugs(query: str) -> set[str]:
        response = anonymous_api.get(f"{ARTICLES}?{query}")
        assert response.status_code == 200, response.content
        return {row["slug"] for row in response.json()["results"]}

    assert slugs("category=product") == {"a", "b"}
    assert slugs("category=band") == {"b"}
    assert slugs("category=nothing") == set()
    assert slugs("tag=蓝牙") == {"b", "c"}
    assert slugs("language=en") == {"b"}
    assert slugs("tag=蓝牙&language=zh-hans") == {"c"}


@pytest.mark.parametrize("caller", PUBLIC_CALLERS)
@pytest.mark.parametrize("query", ["status=draft", "audience=internal", "audience=public"])
def test_public_callers_may_not_filter_by_status_or_audience(request, caller, query, shelf):
    response = request.getfixturevalue(caller).get(f"{ARTICLES}?{query}")
    assert response.status_code == 403
    assert "UNREVIEWED" not in response.content.decode()


def test_staff_filter_by_status_and_audience(client, alice, shelf):
    _staff(client, alice)
    drafts = {row["slug"] for row in client.get(f"{ARTICLES}?status=draft").json()["results"]}
    assert drafts == {"draft-only", "band"}
    internal = {row["slug"] for row in client.get(f"{ARTICLES}?audience=internal").json()["results"]}
    assert internal == {"internal-refunds"}


def test_a_bad_filter_value_is_a_400_naming_it(client, alice):
    response = _staff(client, alice).get(f"{ARTICLES}?language=fr")
    assert response.status_code == 400 and "language" in response.json()["error"]["fields"]


def test_the_list_is_paginated_newest_first(anonymous_api, write):
    for n in range(5):
        write(f"a{n}", f"文章 {n}")
    first = anonymous_api.get(f"{ARTICLES}?page_size=2").json()
    assert [row["slug"] for row in first["results"]] == ["a4", "a3"] and first["next"]
    second = anonymous_api.get(first["next"]).json()
    assert [row["slug"] for row in second["results"]] == ["a2", "a1"]


def _list_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("caller", ["anonymous_api", "api", "staff"])
def test_the_list_takes_the_same_queries_for_two_articles_as_for_twelve(request, caller, client, alice, write, django_assert_max_num_queries):
    client_ = _staff(client, alice) if caller == "staff" else request.getfixturevalue(caller)
    category = KbCategory.objects.create(name="售后", slug="after-sales")
    for n in range(2):
        write(f"a{n}", f"文章 {n}", category=category, tags=[f"t{n}", "共同"])
    _list_queries(client_, ARTICLES)  # warms per-process caches (content types, the key's last use)
    few = _list_queries(client_, ARTICLES)
    for n in range(2, 12):
        write(f"a{n}", f"文章 {n}", category=category, tags=[f"t{n}", "共同"])
    many = _list_queries(client_, ARTICLES)
    assert many == few
    with django_assert_max_num_queries(8):  # session or key, permissions, articles, tags
        client_.get(ARTICLES)


# --- search --------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", PUBLIC_CALLERS)
def test_public_callers_search_live_public_articles_only(request, caller, shelf):
    response = request.getfixturevalue(caller).get(SEARCH, {"q": "退货 退款 手环 草稿"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert {hit["slug"] for hit in results} <= {"returns", "band"} and results
    assert "UNREVIEWED" not in response.content.decode() and "秘密" not in response.content.decode()
    log = SearchLog.objects.get()
    assert log.source == "api" and log.public is True


def test_staff_search_finds_drafts_and_internal_articles(client, alice, shelf):
    response = _staff(client, alice).get(SEARCH, {"q": "退款 审批"})
    assert [hit["slug"] for hit in response.json()["results"]] == ["internal-refunds"]
    assert SearchLog.objects.get().public is False


def test_search_returns_slug_title_snippet_and_score_best_first(anonymous_api, write):
    write("body-only", "售后说明", "如何申请退款:在订单页点击退款。")
    write("title", "退款流程", "在订单页操作。")
    results = anonymous_api.get(SEARCH, {"q": "退款"}).json()["results"]
    assert [hit["slug"] for hit in results] == ["title", "body-only"]
    assert all(set(hit) == {"slug", "title", "snippet", "score"} for hit in results)
    assert results[0]["score"] > results[1]["score"]
    assert "<mark>退款</mark>" in results[1]["snippet"]


def test_search_limit_caps_the_results(anonymous_api, write):
    for n in range(4):
        write(f"r{n}", f"退款 {n}")
    assert len(anonymous_api.get(SEARCH, {"q": "退款", "limit": 2}).json()["results"]) == 2
    assert len(anonymous_api.get(SEARCH, {"q": "退款"}).json()["results"]) == 4


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "q"), ({"q": ""}, "q"), ({"q": "   "}, "q"), ({"q": "x" * 201}, "q"),
     ({"q": "退款", "limit": 0}, "limit"), ({"q": "退款", "limit": 51}, "limit"), ({"q": "退款", "limit": "ten"}, "limit")],
)
def test_bad_search_parameters_are_a_400_naming_the_field(anonymous_api, params, field):
    response = anonymous_api.get(SEARCH, params)
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    assert SearchLog.objects.count() == 0


# --- feedback ------------------------------------------------------------------------------


def _vote(client, slug: str, body, **headers):
    return client.post(f"{ARTICLES}{slug}/feedback/", json.dumps(body), content_type="application/json", **headers)


def test_anonymous_readers_vote_and_get_the_counts(anonymous_api, write):
    write("returns", "退货流程")
    assert _vote(anonymous_api, "returns", {"helpful": True}).json() == {"helpful": True, "helpful_count": 1, "unhelpful_count": 0}
    second = _vote(anonymous_api, "returns", {"helpful": False, "comment": "没有说运费"})
    assert second.status_code == 201
    assert second.json() == {"helpful": False, "helpful_count": 1, "unhelpful_count": 1}
    assert ArticleFeedback.objects.filter(user=None, source="public").count() == 2
    assert anonymous_api.get(f"{ARTICLES}returns/").json()["unhelpful_count"] == 1


def test_an_integration_passes_on_each_of_its_readers_votes(api, write):
    write("returns", "退货流程")
    for _ in range(3):
        assert _vote(api, "returns", {"helpful": True}).status_code == 201
    assert Article.objects.get(slug="returns").helpful_count == 3


def test_a_staff_member_has_one_vote_which_they_may_change(client, alice, write):
    write("returns", "退货流程")
    _staff(client, alice)
    assert _vote(client, "returns", {"helpful": True}).json()["helpful_count"] == 1
    assert _vote(client, "returns", {"helpful": True}).json()["helpful_count"] == 1
    changed = _vote(client, "returns", {"helpful": False}).json()
    assert changed == {"helpful": False, "helpful_count": 0, "unhelpful_count": 1}
    assert ArticleFeedback.objects.get().user == alice.user


@pytest.mark.parametrize("slug", ["internal-refunds", "draft-only", "old-policy"])
def test_anonymous_feedback_on_an_article_they_cannot_read_is_a_404(anonymous_api, shelf, slug):
    assert _vote(anonymous_api, slug, {"helpful": False}).status_code == 404
    assert ArticleFeedback.objects.count() == 0


def test_feedback_on_a_never_published_draft_is_refused(client, alice, shelf):
    response = _staff(client, alice).post(f"{ARTICLES}draft-only/feedback/", {"helpful": True}, content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "not_published"


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "helpful"), ({"helpful": "maybe"}, "helpful"), ({"helpful": None}, "helpful"),
     ({"helpful": True, "comment": "长" * 501}, "comment")],
)
def test_a_bad_feedback_body_is_a_400_naming_the_field(anonymous_api, write, body, field):
    write("returns", "退货流程")
    response = _vote(anonymous_api, "returns", body)
    assert response.status_code == 400 and field in response.json()["error"]["fields"]
    assert ArticleFeedback.objects.count() == 0


def test_feedback_that_is_not_json_is_a_400(anonymous_api, write):
    write("returns", "退货流程")
    response = anonymous_api.post(f"{ARTICLES}returns/feedback/", "{helpful", content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "parse_error"


def test_anonymous_votes_are_throttled_per_address_but_keys_keep_their_own_budget(anonymous_api, api, write, settings):
    settings.KB_FEEDBACK_THROTTLE_RATE = "2/min"
    write("returns", "退货流程")
    statuses = [_vote(anonymous_api, "returns", {"helpful": True}).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    other_address = _vote(anonymous_api, "returns", {"helpful": True}, REMOTE_ADDR="10.1.2.3")
    assert other_address.status_code == 201
    assert [_vote(api, "returns", {"helpful": True}).status_code for _ in range(3)] == [201, 201, 201]
    assert Article.objects.get(slug="returns").helpful_count == 6


def test_an_anonymous_vote_with_an_idempotency_key_is_simply_counted(anonymous_api, write):
    write("returns", "退货流程")
    response = _vote(anonymous_api, "returns", {"helpful": True}, HTTP_IDEMPOTENCY_KEY="vote-1")
    assert response.status_code == 201


def test_a_read_only_key_cannot_vote(write):
    from rest_framework.test import APIClient

    from helpdesk.api_keys import create_api_key

    write("returns", "退货流程")
    _, plain = create_api_key(name="warehouse", scope="read")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert client.get(f"{ARTICLES}returns/").status_code == 200
    assert _vote(client, "returns", {"helpful": True}).status_code == 403


# --- canned replies ------------------------------------------------------------------------


@pytest.fixture
def replies(support_team, billing_team):
    CannedReply.objects.create(title="问候", body="{customer_name}您好,我是{agent_name},工单 {ticket_ref}。", position=1)
    CannedReply.objects.create(title="支持组", body="支持组的话术", team=support_team, position=2)
    CannedReply.objects.create(title="账单组", body="账单组的话术", team=billing_team, position=3)
    CannedReply.objects.create(title="停用", body="不再使用", is_active=False)


def test_an_agent_lists_the_global_replies_and_their_teams(client, alice, replies):
    rows = _staff(client, alice).get(CANNED).json()["results"]
    assert [row["title"] for row in rows] == ["问候", "支持组"]
    assert rows[0]["body"] == "{customer_name}您好,我是{agent_name},工单 {ticket_ref}。" and rows[0]["team"] is None
    assert rows[1]["team"]["name"] == "Support"


def test_with_a_ticket_the_bodies_are_filled_for_it(client, alice, support_team, replies):
    ticket = TicketFactory(team=support_team, customer=CustomerFactory(name="张三"))
    rows = _staff(client, alice).get(CANNED, {"ticket": ticket.reference}).json()["results"]
    assert rows[0]["body"] == f"张三您好,我是Alice,工单 {ticket.reference}。"
    assert rows[1]["body"] == "支持组的话术"


@pytest.mark.parametrize("reference", ["another-teams", "T99999999", "garbage", ""])
def test_a_ticket_the_agent_cannot_see_is_a_404(client, alice, billing_team, replies, reference):
    if reference == "another-teams":
        reference = TicketFactory(team=billing_team, customer=CustomerFactory(name="李四")).reference
    response = _staff(client, alice).get(CANNED, {"ticket": reference})
    assert response.status_code == 404 and "李四" not in response.content.decode()


def test_an_integration_gets_the_global_replies_filled_for_any_ticket(api, billing_team, replies):
    ticket = TicketFactory(team=billing_team, customer=CustomerFactory(name="王五"))
    rows = api.get(CANNED, {"ticket": ticket.reference}).json()["results"]
    assert [row["title"] for row in rows] == ["问候"]
    assert rows[0]["body"] == f"王五您好,我是{{agent_name}},工单 {ticket.reference}。"


def test_canned_replies_need_a_key_and_the_right_to_read_them(anonymous_api, client, olga, replies):
    assert anonymous_api.get(CANNED).status_code == 401
    client.force_login(olga)
    assert client.get(CANNED).status_code == 403


def test_filling_replies_for_a_ticket_takes_the_same_queries_for_two_as_for_ten(client, alice, support_team):
    ticket = TicketFactory(team=support_team)
    for n in range(2):
        CannedReply.objects.create(title=f"r{n}", body="{customer_name} {expected_reply_time}", team=support_team)
    url = f"{CANNED}?ticket={ticket.reference}"
    _staff(client, alice)
    _list_queries(client, url)
    few = _list_queries(client, url)
    for n in range(2, 10):
        CannedReply.objects.create(title=f"r{n}", body="{customer_name} {expected_reply_time}")
    assert _list_queries(client, url) == few


# --- schema --------------------------------------------------------------------------------


def test_every_endpoint_is_in_the_schema(anonymous_api):
    paths = anonymous_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    assert {
        "/api/v1/kb/articles/", "/api/v1/kb/articles/{slug}/", "/api/v1/kb/articles/{slug}/feedback/",
        "/api/v1/kb/search", "/api/v1/canned-replies/",
    } <= set(paths)
    assert {} in paths["/api/v1/kb/search"]["get"]["security"]  # no key needed
    assert {} not in paths["/api/v1/canned-replies/"]["get"]["security"]
