"""The knowledge base in the admin: the review workflow through its buttons, versions and revert,
safe previews, who may do what, canned replies per team, the read-only lists."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from knowledge import services
from knowledge.models import (
    Article,
    ArticleFeedback,
    CannedReply,
    KbCategory,
    SearchLog,
    TrainingCase,
)
from tests.factories import CategoryFactory, TicketFactory, UserFactory
from tickets.models import Ticket

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]
S = Article.Status
LIST = reverse("admin:knowledge_article_changelist")
ADD = reverse("admin:knowledge_article_add")


def change_url(article: Article) -> str:
    return reverse("admin:knowledge_article_change", args=[article.pk])


def step_url(article: Article, step: str) -> str:
    return reverse("admin:knowledge_article_workflow", args=[article.pk, step])


def history_url(article: Article) -> str:
    return reverse("admin:knowledge_article_history", args=[article.pk])


def shown_messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def count_queries(client, url, **params) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.fixture
def draft(alice) -> Article:
    return services.create_article(
        actor=alice.user, title="退货流程", body="签收后 7 天内可退货。", slug="returns", tags=["退货", "售后"],
    )


def publish(article: Article, *, author, reviewer) -> Article:
    services.submit_for_review(article=article, actor=author)
    return services.publish(article=article, reviewer=reviewer)


def form_data(**changes) -> dict:
    data = {
        "title": "退货流程", "slug": "returns", "body": "签收后 7 天内可退货。", "language": "zh-hans", "category": "",
        "tags": "退货, 售后", "audience": "internal", "owner": "", "review_due_on": "",
    }
    data.update(changes)
    return data


# --- the list ------------------------------------------------------------------------------


def make_articles(n: int, owner) -> None:
    for i in range(n):
        category = KbCategory.objects.create(name=f"分类{i}", slug=f"cat-{owner.pk}-{i}-{Article.objects.count()}")
        services.create_article(actor=owner, title=f"文章 {Article.objects.count()}", body="正文", category=category)


def test_the_article_list_costs_the_same_queries_for_3_rows_or_30(client, alice, django_assert_max_num_queries):
    client.force_login(alice.user)
    make_articles(3, alice.user)
    few = count_queries(client, LIST)
    make_articles(27, alice.user)
    with django_assert_max_num_queries(few):
        response = client.get(LIST)
    assert len(response.context["cl"].result_list) == 30


def test_a_search_costs_the_same_queries_for_3_hits_or_30(client, alice, django_assert_max_num_queries):
    client.force_login(alice.user)
    make_articles(3, alice.user)
    few = count_queries(client, LIST, q="文章")
    make_articles(27, alice.user)
    with django_assert_max_num_queries(few):
        response = client.get(LIST, {"q": "文章"})
    assert len(response.context["cl"].result_list) == 30


def test_the_search_box_ranks_title_matches_first_and_logs_the_search(client, alice):
    mention = services.create_article(actor=alice.user, title="售后政策", body="退款会在三天内到账。", slug="after-sales")
    title = services.create_article(actor=alice.user, title="退款多久到账", body="一般三天。", slug="refund-time")
    services.create_article(actor=alice.user, title="手环连接失败", body="重启手环。", slug="band")
    client.force_login(alice.user)
    response = client.get(LIST, {"q": "退款"})
    assert list(response.context["cl"].result_list) == [title, mention]
    log = SearchLog.objects.get()
    assert (log.query, log.source, log.results, log.user) == ("退款", "admin", 2, alice.user)


def test_the_search_box_also_finds_a_slug_typed_in_part(client, alice, draft):
    client.force_login(alice.user)
    response = client.get(LIST, {"q": "retur"})
    assert list(response.context["cl"].result_list) == [draft]


def test_the_list_filters_by_status_audience_and_language(client, alice, lena, draft):
    other = services.create_article(actor=alice.user, title="Refund policy", language="en", audience="public", slug="refund")
    publish(other, author=alice.user, reviewer=lena.user)
    client.force_login(alice.user)
    response = client.get(LIST, {"status__exact": "published", "audience__exact": "public", "language__exact": "en"})
    assert list(response.context["cl"].result_list) == [other]


# --- the article form -----------------------------------------------------------------------


def test_an_agent_writes_a_draft_through_the_form(client, alice):
    category = KbCategory.objects.create(name="售后", slug="after-sales")
    ticket_category = CategoryFactory()
    client.force_login(alice.user)
    response = client.post(ADD, form_data(category=category.pk, tags="退货，售后, 退货", ticket_categories=[ticket_category.pk]))
    assert response.status_code == 302
    article = Article.objects.get(slug="returns")
    assert article.status == S.DRAFT and article.created_by == alice.user and article.owner == alice.user
    assert sorted(article.tags.values_list("name", flat=True)) == ["售后", "退货"]
    assert list(article.ticket_categories.all()) == [ticket_category]
    assert article.search_title  # indexed by the service
    assert [(v.history_type, v.history_change_reason) for v in article.history.all()] == [("+", "created")]


def test_an_empty_slug_is_made_from_the_title(client, alice):
    client.force_login(alice.user)
    client.post(ADD, form_data(slug="", title="手环 连接失败"))
    assert Article.objects.get().slug == "手环-连接失败"


def test_a_duplicate_slug_is_a_form_error_naming_the_field(client, alice, draft):
    client.force_login(alice.user)
    response = client.post(ADD, form_data(title="另一篇"))
    assert response.status_code == 200
    assert "slug" in response.context["adminform"].form.errors
    assert Article.objects.count() == 1


def test_editing_a_published_article_keeps_the_live_version_until_reviewed(client, alice, lena, draft):
    publish(draft, author=alice.user, reviewer=lena.user)
    client.force_login(alice.user)
    response = client.post(change_url(draft), form_data(body="签收后 15 天内可退货。"), follow=True)
    assert "readers still see the published version" in " ".join(shown_messages(response))
    draft.refresh_from_db()
    assert draft.status == S.DRAFT and draft.body == "签收后 15 天内可退货。"
    assert draft.live_body == "签收后 7 天内可退货。" and draft.is_live
    page = client.get(change_url(draft)).content.decode()
    assert "15 天内" in page and "7 天内可退货" in page  # the working copy's preview and the live version


def test_the_form_shows_tags_as_comma_separated_text(client, alice, draft):
    client.force_login(alice.user)
    form = client.get(change_url(draft)).context["adminform"].form
    assert form.initial["tags"] == "售后, 退货"


def test_a_refusal_by_the_service_is_shown_and_nothing_is_saved(client, alice, draft, monkeypatch):
    from helpdesk.errors import DomainError

    def refuse(**kwargs):
        raise DomainError("archived", "An archived article cannot be changed; restore it first.")

    monkeypatch.setattr(services, "update_article", refuse)
    client.force_login(alice.user)
    response = client.post(change_url(draft), form_data(body="改了"), follow=True)
    assert response.redirect_chain[-1][0] == change_url(draft)
    assert "Not saved: An archived article cannot be changed" in " ".join(shown_messages(response))
    draft.refresh_from_db()
    assert draft.body == "签收后 7 天内可退货。"


def test_the_preview_escapes_a_script(client, alice):
    article = services.create_article(
        actor=alice.user, title="<script>alert('t')</script>", slug="xss",
        body="正文 <script>alert('b')</script> [点我](javascript:alert(1)) <img src=x onerror=alert(2)>",
    )
    client.force_login(alice.user)
    page = client.get(change_url(article)).content.decode()
    assert "<script>alert(" not in page
    preview = page.split('class="kb-preview"', 1)[1]
    assert 'href="javascript' not in preview and "<img" not in preview  # shown as text, not as markup
    assert "&lt;script&gt;alert(&#x27;b&#x27;)&lt;/script&gt;" in page


# --- the workflow buttons --------------------------------------------------------------------


def test_an_author_cannot_publish_their_own_change_and_another_reviewer_can(client, alice, lena, tom, draft):
    services.update_article(article=draft, actor=lena.user, changes={"body": "签收后 10 天内可退货。"})
    client.force_login(lena.user)
    client.post(step_url(draft, "submit"))
    draft.refresh_from_db()
    assert draft.status == S.IN_REVIEW

    page = client.get(change_url(draft)).content.decode()
    assert "another reviewer must publish it" in page
    assert step_url(draft, "publish") not in page  # no button for her own change
    response = client.post(step_url(draft, "publish"), follow=True)
    assert "Someone other than the article's author must review it." in shown_messages(response)
    draft.refresh_from_db()
    assert draft.status == S.IN_REVIEW and draft.published_at is None and draft.live_body == ""

    client.force_login(tom)
    assert step_url(draft, "publish") in client.get(change_url(draft)).content.decode()
    response = client.post(step_url(draft, "publish"), {"note": "核对过", "seen": draft.updated_at.isoformat()}, follow=True)
    assert "Published: readers now see this version." in shown_messages(response)
    draft.refresh_from_db()
    assert draft.status == S.PUBLISHED and draft.reviewed_by == tom and draft.live_body == "签收后 10 天内可退货。"


def test_an_agent_cannot_publish(client, alice, bob, draft):
    services.submit_for_review(article=draft, actor=alice.user)
    client.force_login(bob.user)
    page = client.get(change_url(draft)).content.decode()
    assert step_url(draft, "publish") not in page
    assert client.post(step_url(draft, "publish")).status_code == 403
    assert "publish_selected" not in client.get(LIST).context["cl"].model_admin.get_actions(
        client.get(LIST).wsgi_request
    )
    draft.refresh_from_db()
    assert draft.status == S.IN_REVIEW and draft.published_at is None


def test_a_reviewer_sends_a_change_back_only_with_a_note(client, alice, lena, draft):
    services.submit_for_review(article=draft, actor=alice.user)
    client.force_login(lena.user)
    response = client.post(step_url(draft, "send_back"), {"note": " "}, follow=True)
    assert "Say what needs changing." in shown_messages(response)
    draft.refresh_from_db()
    assert draft.status == S.IN_REVIEW
    client.post(step_url(draft, "send_back"), {"note": "补充到账时间"})
    draft.refresh_from_db()
    assert draft.status == S.DRAFT and draft.review_note == "补充到账时间"
    client.force_login(alice.user)
    assert "补充到账时间" in client.get(change_url(draft)).content.decode()


def test_archive_makes_the_article_read_only_until_restored(client, alice, lena, draft):
    publish(draft, author=alice.user, reviewer=lena.user)
    client.force_login(alice.user)
    assert client.post(step_url(draft, "archive")).status_code == 403  # agents do not archive
    client.force_login(lena.user)
    client.post(step_url(draft, "archive"))
    draft.refresh_from_db()
    assert draft.status == S.ARCHIVED and not draft.is_live
    response = client.post(change_url(draft), form_data(body="改了"))
    assert response.status_code == 403
    client.force_login(alice.user)
    response = client.post(step_url(draft, "restore"), follow=True)
    draft.refresh_from_db()
    assert draft.status == S.DRAFT
    assert "Restored as a draft" in " ".join(shown_messages(response))


def test_a_workflow_step_of_the_wrong_status_shows_the_services_error(client, alice, draft):
    client.force_login(alice.user)
    response = client.post(step_url(draft, "restore"), follow=True)
    assert "Only an archived article can be restored." in shown_messages(response)
    assert client.post(step_url(draft, "nonsense")).status_code == 404
    assert client.get(step_url(draft, "submit")).status_code == 302  # GET changes nothing
    draft.refresh_from_db()
    assert draft.status == S.DRAFT


def test_the_list_actions_report_what_the_service_refused(client, alice, lena, tom, draft):
    other = services.create_article(actor=lena.user, title="换货", slug="exchange")
    services.submit_for_review(article=other, actor=lena.user)
    client.force_login(lena.user)
    response = client.post(
        LIST, {"action": "submit_selected", "_selected_action": [draft.pk, other.pk], "index": 0}, follow=True,
    )
    text = " ".join(shown_messages(response))
    assert "1 article updated." in text and "换货: Only a draft can be sent for review." in text
    assert Article.objects.get(pk=draft.pk).status == S.IN_REVIEW


def test_the_list_offers_no_blind_publish(client, lena):
    client.force_login(lena.user)
    actions = client.get(LIST).context["action_form"].fields["action"].choices
    assert "publish_selected" not in [name for name, _label in actions]


# --- versions -------------------------------------------------------------------------------


def test_the_history_shows_a_readable_diff_and_reverts_to_a_version(client, alice, lena, draft):
    first = draft.history.get().history_id
    services.update_article(
        article=draft, actor=alice.user, changes={"body": "签收后 7 天内可退货。\n运费由买家承担。", "title": "退货须知"},
        tags=["退货"],
    )
    client.force_login(alice.user)
    page = client.get(history_url(draft)).content.decode()
    assert '<span class="kb-diff-ins">+ 运费由买家承担。</span>' in page
    assert "<del>退货流程</del> → <ins>退货须知</ins>" in page
    assert "<del>售后, 退货</del> → <ins>退货</ins>" in page
    revert = reverse("admin:knowledge_article_revert", args=[draft.pk, first])
    assert f'action="{revert}"' in page

    response = client.post(revert, follow=True)
    assert response.redirect_chain[-1][0] == change_url(draft)
    draft.refresh_from_db()
    assert (draft.title, draft.body) == ("退货流程", "签收后 7 天内可退货。")
    assert sorted(draft.tags.values_list("name", flat=True)) == ["售后", "退货"]
    assert f"reverted to version {first}" in client.get(history_url(draft)).content.decode()


def test_revert_to_a_version_of_another_article_is_refused(client, alice, draft):
    other = services.create_article(actor=alice.user, title="换货", slug="exchange")
    client.force_login(alice.user)
    response = client.post(reverse("admin:knowledge_article_revert", args=[draft.pk, other.history.get().history_id]), follow=True)
    assert "That version is not one of this article's." in shown_messages(response)
    draft.refresh_from_db()
    assert draft.title == "退货流程"


def test_a_reader_without_the_change_permission_sees_versions_but_cannot_revert(client, iris, alice, draft):
    services.update_article(article=draft, actor=alice.user, changes={"body": "新"})
    client.force_login(iris)  # QA inspectors may read articles
    page = client.get(history_url(draft)).content.decode()
    assert "kb-diff-ins" in page and "Revert to this version" not in page
    first = draft.history.order_by("history_id").first().history_id
    assert client.post(reverse("admin:knowledge_article_revert", args=[draft.pk, first])).status_code == 403


def test_the_history_page_costs_the_same_queries_for_2_versions_or_12(client, alice, draft, django_assert_max_num_queries):
    client.force_login(alice.user)
    services.update_article(article=draft, actor=alice.user, changes={"body": "v1"}, tags=["a"])
    few = count_queries(client, history_url(draft))
    for n in range(10):
        services.update_article(article=draft, actor=alice.user, changes={"body": f"v{n + 2}"}, tags=[f"t{n}"])
    with django_assert_max_num_queries(few):
        client.get(history_url(draft))


# --- categories -----------------------------------------------------------------------------


def test_the_category_list_shows_each_category_with_its_path(client, lena):
    devices = KbCategory.objects.create(name="设备使用", slug="devices")
    KbCategory.objects.create(name="连接与配对", slug="connection", parent=devices)
    client.force_login(lena.user)
    page = client.get(reverse("admin:knowledge_kbcategory_changelist")).content.decode()
    assert "设备使用 › 连接与配对" in page


def test_a_category_cannot_move_under_its_own_subcategory(client, lena):
    devices = KbCategory.objects.create(name="设备使用", slug="devices")
    connection_ = KbCategory.objects.create(name="连接与配对", slug="connection", parent=devices)
    client.force_login(lena.user)
    response = client.post(
        reverse("admin:knowledge_kbcategory_change", args=[devices.pk]),
        {"name": "设备使用", "slug": "devices", "parent": connection_.pk, "position": 0},
    )
    assert response.status_code == 200 and "parent" in response.context["adminform"].form.errors
    devices.refresh_from_db()
    assert devices.parent is None


# --- canned replies -------------------------------------------------------------------------


@pytest.fixture
def replies(support_team, billing_team) -> dict[str, CannedReply]:
    return {
        "global": CannedReply.objects.create(title="问候", body="您好"),
        "support": CannedReply.objects.create(title="支持组结束语", body="再见", team=support_team),
        "billing": CannedReply.objects.create(title="账务组说明", body="账单", team=billing_team),
    }


def reply_url(reply: CannedReply) -> str:
    return reverse("admin:knowledge_cannedreply_change", args=[reply.pk])


def test_a_lead_sees_their_teams_and_the_global_canned_replies_only(client, lena, replies):
    client.force_login(lena.user)
    listed = set(client.get(reverse("admin:knowledge_cannedreply_changelist")).context["cl"].result_list)
    assert listed == {replies["global"], replies["support"]}
    assert client.get(reply_url(replies["billing"])).status_code == 302  # "does not exist"


def test_a_lead_edits_their_teams_reply_but_not_a_global_one(client, lena, replies, support_team):
    client.force_login(lena.user)
    data = {"title": "支持组结束语", "shortcut": "bye", "body": "再见 {customer_name}", "team": support_team.pk,
            "language": "zh-hans", "position": 0, "is_active": "on"}
    assert client.post(reply_url(replies["support"]), data).status_code == 302
    replies["support"].refresh_from_db()
    assert replies["support"].body == "再见 {customer_name}"
    assert client.post(reply_url(replies["global"]), {**data, "team": ""}).status_code == 403
    replies["global"].refresh_from_db()
    assert replies["global"].body == "您好"


def test_a_lead_adds_replies_only_for_their_own_teams(client, lena, replies, support_team, billing_team):
    client.force_login(lena.user)
    add = reverse("admin:knowledge_cannedreply_add")
    data = {"title": "新", "shortcut": "", "body": "文本", "language": "zh-hans", "position": 0, "is_active": "on"}
    for team in ("", billing_team.pk):
        response = client.post(add, {**data, "team": team})
        assert response.status_code == 200 and "team" in response.context["adminform"].form.errors
    assert client.post(add, {**data, "team": support_team.pk}).status_code == 302
    assert CannedReply.objects.filter(title="新", team=support_team).exists()


def test_an_unknown_placeholder_is_a_form_error(client, ada):
    client.force_login(ada)
    response = client.post(reverse("admin:knowledge_cannedreply_add"), {
        "title": "新", "body": "您好 {customer}", "team": "", "language": "zh-hans", "position": 0, "is_active": "on",
    })
    assert "body" in response.context["adminform"].form.errors


def test_an_administrator_keeps_the_global_replies(client, ada, replies):
    client.force_login(ada)
    listed = set(client.get(reverse("admin:knowledge_cannedreply_changelist")).context["cl"].result_list)
    assert listed == set(replies.values())
    response = client.post(reverse("admin:knowledge_cannedreply_add"), {
        "title": "全局结束语", "body": "祝您生活愉快", "team": "", "language": "zh-hans", "position": 1, "is_active": "on",
    })
    assert response.status_code == 302 and CannedReply.objects.get(title="全局结束语").team is None


def test_agents_only_read_canned_replies(client, alice, replies):
    client.force_login(alice.user)
    response = client.get(reverse("admin:knowledge_cannedreply_changelist"))
    assert set(response.context["cl"].result_list) == {replies["global"], replies["support"]}
    assert client.get(reverse("admin:knowledge_cannedreply_add")).status_code == 403
    assert client.post(reply_url(replies["support"]), {"title": "x", "body": "x"}).status_code == 403


def test_the_canned_reply_list_costs_the_same_queries_for_3_or_30(client, lena, support_team, django_assert_max_num_queries):
    client.force_login(lena.user)
    url = reverse("admin:knowledge_cannedreply_changelist")
    for n in range(3):
        CannedReply.objects.create(title=f"r{n}", body="x", team=support_team)
    few = count_queries(client, url)
    for n in range(27):
        CannedReply.objects.create(title=f"s{n}", body="x", team=support_team)
    with django_assert_max_num_queries(few):
        client.get(url)


# --- read-only lists ------------------------------------------------------------------------


def test_feedback_and_searches_are_read_only_lists_for_leads(client, lena, alice, draft, django_assert_max_num_queries):
    draft = publish(draft, author=alice.user, reviewer=lena.user)
    services.record_feedback(article=draft, helpful=True, user=alice.user)
    services.find("退货", user=alice.user, source="admin", public_only=False)
    client.force_login(lena.user)
    for model in ("articlefeedback", "searchlog"):
        with django_assert_max_num_queries(12):
            response = client.get(reverse(f"admin:knowledge_{model}_changelist"))
        assert response.status_code == 200 and len(response.context["cl"].result_list) == 1
        assert client.get(reverse(f"admin:knowledge_{model}_add")).status_code == 403
    feedback = ArticleFeedback.objects.get()
    assert client.post(reverse("admin:knowledge_articlefeedback_change", args=[feedback.pk]), {"helpful": ""}).status_code == 403


def test_agents_do_not_see_the_search_log(client, alice):
    client.force_login(alice.user)
    assert client.get(reverse("admin:knowledge_searchlog_changelist")).status_code == 403


# --- training cases -------------------------------------------------------------------------


def test_a_training_case_shows_its_transcript_escaped_and_read_only(client, tom):
    case = TrainingCase.objects.create(
        title="退货案例", transcript=[
            {"role": "customer", "at": "2026-11-01T10:00:00+00:00", "body": "<b>我要退货</b>"},
            {"role": "agent", "at": "2026-11-01T10:05:00+00:00", "body": "好的"},
        ],
    )
    client.force_login(tom)
    page = client.get(reverse("admin:knowledge_trainingcase_change", args=[case.pk])).content.decode()
    assert "&lt;b&gt;我要退货&lt;/b&gt;" in page and 'class="kb-line kb-agent"' in page
    assert client.get(reverse("admin:knowledge_trainingcase_add")).status_code == 403


def test_the_training_case_list_costs_the_same_queries_for_2_or_12(client, tom, support_team, django_assert_max_num_queries):
    client.force_login(tom)
    url = reverse("admin:knowledge_trainingcase_changelist")

    def make(n):
        for _ in range(n):
            ticket = TicketFactory(team=support_team, status=Ticket.Status.SOLVED, category=CategoryFactory())
            TrainingCase.objects.create(title="案例", source_ticket=ticket, category=ticket.category, created_by=UserFactory())

    make(2)
    few = count_queries(client, url)
    make(10)
    with django_assert_max_num_queries(few):
        client.get(url)


def test_readers_and_archived_articles_get_a_read_only_page(client, iris, lena, alice, draft):
    client.force_login(iris)  # QA inspectors only read
    response = client.get(change_url(draft))
    assert response.status_code == 200 and not response.context["has_change_permission"]
    assert "退货, 售后" in response.content.decode() or "售后, 退货" in response.content.decode()
    services.archive(article=draft, actor=lena.user)
    client.force_login(alice.user)
    response = client.get(change_url(draft))
    assert response.status_code == 200 and not response.context["has_change_permission"]
    assert step_url(draft, "restore") in response.content.decode()


def test_a_single_version_page_leads_back_to_the_versions(client, alice, draft):
    client.force_login(alice.user)
    version = draft.history.get().history_id
    response = client.get(reverse("admin:knowledge_article_simple_history", args=[draft.pk, version]))
    assert response.status_code == 302 and response["Location"] == history_url(draft)


def test_a_reviewer_cannot_publish_a_version_changed_after_they_opened_it(client, alice, tom, draft):
    services.submit_for_review(article=draft, actor=alice.user)
    client.force_login(tom)
    client.get(change_url(draft))
    opened = Article.objects.get(pk=draft.pk).updated_at
    services.update_article(article=draft, actor=alice.user, changes={"body": "偷换的内容"})
    services.submit_for_review(article=draft, actor=alice.user)
    response = client.post(step_url(draft, "publish"), {"seen": opened.isoformat()}, follow=True)
    assert any("The article changed after you opened it" in m for m in shown_messages(response))
    draft.refresh_from_db()
    assert draft.published_at is None and draft.live_body == ""
    response = client.post(step_url(draft, "publish"), follow=True)  # no version at all: refused too
    assert any("The article changed after you opened it" in m for m in shown_messages(response))
