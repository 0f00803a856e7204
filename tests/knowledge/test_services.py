"""The knowledge base's rules: review by someone else, versions and revert, safe rendering,
feedback and usage counts, canned replies, training cases and review reminders."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from helpdesk.errors import DomainError
from helpdesk.models import Notification
from knowledge import services
from knowledge.models import (
    Article,
    ArticleFeedback,
    ArticleUse,
    CannedReply,
    SearchLog,
    TrainingCase,
)
from knowledge.rendering import to_html
from tests.factories import CustomerFactory, MessageFactory, TicketFactory
from tickets.models import Message, Ticket


@pytest.fixture
def draft(alice) -> Article:
    return services.create_article(
        actor=alice.user, title="退货流程", body="签收后 7 天内可退货。", slug="returns", tags=["退货", "售后"],
    )


def published(article: Article, *, author, reviewer) -> Article:
    services.submit_for_review(article=article, actor=author)
    return services.publish(article=article, reviewer=reviewer)


# --- review ----------------------------------------------------------------------------


def test_an_author_cannot_publish_their_own_article(draft, alice, lena):
    lena.user.user_permissions.clear()
    services.update_article(article=draft, actor=lena.user, changes={"body": "签收后 7 天内可无理由退货。"})
    services.submit_for_review(article=draft, actor=lena.user)
    with pytest.raises(DomainError) as refused:
        services.publish(article=draft, reviewer=lena.user)  # lena holds publish_article as a team lead
    assert refused.value.code == "self_review"
    draft.refresh_from_db()
    assert draft.status == Article.Status.IN_REVIEW
    assert draft.published_at is None and draft.live_title == ""


def test_someone_without_the_review_permission_cannot_publish(draft, alice, bob):
    services.submit_for_review(article=draft, actor=alice.user)
    with pytest.raises(DomainError) as refused:
        services.publish(article=draft, reviewer=bob.user)
    assert refused.value.code == "forbidden"


def test_another_reviewer_publishes_and_the_review_falls_due_in_90_days(draft, alice, lena):
    article = published(draft, author=alice.user, reviewer=lena.user)
    assert article.status == Article.Status.PUBLISHED
    assert article.reviewed_by == lena.user
    assert article.live_title == "退货流程" and "7 天内可退货" in article.live_html
    assert article.review_due_on == timezone.localdate() + timedelta(days=90)


def test_only_a_draft_goes_to_review_and_only_a_reviewed_one_is_published(draft, alice, lena):
    with pytest.raises(DomainError):
        services.publish(article=draft, reviewer=lena.user)
    services.submit_for_review(article=draft, actor=alice.user)
    with pytest.raises(DomainError):
        services.submit_for_review(article=draft, actor=alice.user)


def test_a_reviewer_sends_a_change_back_with_a_note(draft, alice, lena):
    services.submit_for_review(article=draft, actor=alice.user)
    with pytest.raises(DomainError) as empty:
        services.reject(article=draft, reviewer=lena.user, note=" ")
    assert empty.value.field == "note"
    services.reject(article=draft, reviewer=lena.user, note="补充退款到账时间")
    draft.refresh_from_db()
    assert draft.status == Article.Status.DRAFT and draft.review_note == "补充退款到账时间"


def test_an_edit_to_a_published_article_waits_for_review_while_readers_keep_the_reviewed_one(draft, alice, lena):
    article = published(draft, author=alice.user, reviewer=lena.user)
    services.update_article(article=article, actor=alice.user, changes={"title": "退货流程(新版)", "body": "改了"})
    article.refresh_from_db()
    assert article.status == Article.Status.DRAFT
    assert article.is_live  # still readable
    assert article.live_title == "退货流程" and "改了" not in article.live_html
    published(article, author=alice.user, reviewer=lena.user)
    article.refresh_from_db()
    assert article.live_title == "退货流程(新版)"


def test_changing_the_owner_or_review_date_needs_no_review(draft, alice, lena):
    article = published(draft, author=alice.user, reviewer=lena.user)
    services.update_article(article=article, actor=alice.user, changes={"owner": lena.user})
    article.refresh_from_db()
    assert article.status == Article.Status.PUBLISHED and article.owner == lena.user


def test_archived_articles_are_not_live_and_restoring_needs_a_new_review(draft, alice, lena):
    article = published(draft, author=alice.user, reviewer=lena.user)
    services.archive(article=article, actor=lena.user)
    article.refresh_from_db()
    assert not article.is_live
    with pytest.raises(DomainError):
        services.update_article(article=article, actor=alice.user, changes={"title": "x"})
    services.restore(article=article, actor=lena.user)
    article.refresh_from_db()
    assert article.status == Article.Status.DRAFT and not article.is_live


def test_a_duplicate_slug_or_an_empty_title_is_refused_by_field(draft, alice):
    with pytest.raises(DomainError) as duplicate:
        services.create_article(actor=alice.user, title="别的", slug="returns")
    assert duplicate.value.field == "slug"
    with pytest.raises(DomainError) as untitled:
        services.create_article(actor=alice.user, title="  ")
    assert untitled.value.field == "title"


def test_slugs_are_made_from_chinese_titles_and_kept_unique(alice):
    first = services.create_article(actor=alice.user, title="发票 开具")
    second = services.create_article(actor=alice.user, title="发票 开具")
    assert first.slug == "发票-开具" and second.slug == "发票-开具-2"


# --- versions ---------------------------------------------------------------------------


def test_every_change_is_a_version_with_who_and_why(draft, alice, lena):
    services.update_article(article=draft, actor=alice.user, changes={"body": "第二版"}, tags=["退货"])
    published(draft, author=alice.user, reviewer=lena.user)
    versions = list(draft.history.order_by("history_id"))
    assert [v.history_change_reason for v in versions] == ["created", "edited", "sent for review", "published"]
    assert [v.history_user for v in versions] == [alice.user, alice.user, alice.user, lena.user]
    assert sorted(link.tag.name for link in versions[0].tags.all()) == ["售后", "退货"]
    assert [link.tag.name for link in versions[1].tags.all()] == ["退货"]


def test_revert_restores_an_earlier_version_as_a_change_to_review(draft, alice, lena):
    first = draft.history.get()
    article = published(draft, author=alice.user, reviewer=lena.user)
    services.update_article(article=article, actor=alice.user, changes={"title": "错的标题", "body": "错的"}, tags=["错"])
    services.revert(article=article, history_id=first.history_id, actor=lena.user)
    article.refresh_from_db()
    assert (article.title, article.body) == ("退货流程", "签收后 7 天内可退货。")
    assert sorted(article.tags.values_list("name", flat=True)) == ["售后", "退货"]
    assert article.status == Article.Status.DRAFT and article.edited_by == lena.user
    assert article.history.latest("history_id").history_change_reason == f"reverted to version {first.history_id}"


def test_revert_to_another_articles_version_is_refused(draft, alice):
    other = services.create_article(actor=alice.user, title="别的文章")
    with pytest.raises(DomainError) as refused:
        services.revert(article=draft, history_id=other.history.get().history_id, actor=alice.user)
    assert refused.value.code == "not_found"


# --- rendering --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        "![x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "<iframe src=https://evil.example></iframe>",
    ],
)
def test_markdown_never_renders_anything_that_runs(markdown):
    html = to_html(markdown)
    tags = re.findall(r"<\s*([a-zA-Z0-9]+)([^>]*)>", html)  # real tags: escaped text has &lt; instead
    assert {name.lower() for name, _ in tags} <= {"p", "a", "img"}
    for _, attributes in tags:
        assert not re.search(r"\bon[a-z]+\s*=", attributes, re.IGNORECASE)
        assert not re.search(r"(href|src)\s*=\s*\"?\s*(javascript|data|vbscript):", attributes, re.IGNORECASE)


def test_markdown_keeps_formatting_and_safe_links():
    html = to_html("# 标题\n\n**粗体** [帮助](https://help.example.com)\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    assert "<h1>标题</h1>" in html and "<strong>粗体</strong>" in html and "<table>" in html
    assert 'href="https://help.example.com"' in html and 'rel="noopener noreferrer nofollow"' in html


def test_the_published_html_is_escaped_too(alice, lena):
    article = services.create_article(actor=alice.user, title="x", body="<script>alert(1)</script>")
    published(article, author=alice.user, reviewer=lena.user)
    article.refresh_from_db()
    assert "<script>" not in article.live_html and "&lt;script&gt;" in article.live_html


# --- readers ----------------------------------------------------------------------------


def test_a_signed_in_reader_has_one_vote_they_may_change(draft, alice, lena, bob):
    article = published(draft, author=alice.user, reviewer=lena.user)
    services.record_feedback(article=article, helpful=True, user=bob.user)
    services.record_feedback(article=article, helpful=True, user=bob.user)
    article.refresh_from_db()
    assert (article.helpful_count, article.unhelpful_count) == (1, 0)
    services.record_feedback(article=article, helpful=False, user=bob.user)
    article.refresh_from_db()
    assert (article.helpful_count, article.unhelpful_count) == (0, 1)
    assert ArticleFeedback.objects.get().source == ArticleFeedback.Source.AGENT


def test_anonymous_readers_each_count_and_drafts_take_no_feedback(draft, alice, lena):
    with pytest.raises(DomainError):
        services.record_feedback(article=draft, helpful=True)
    article = published(draft, author=alice.user, reviewer=lena.user)
    services.record_feedback(article=article, helpful=True)
    services.record_feedback(article=article, helpful=True)
    article.refresh_from_db()
    assert article.helpful_count == 2
    assert set(ArticleFeedback.objects.values_list("source", flat=True)) == {"public"}


def test_an_article_used_in_replies_counts_once_per_ticket(draft, alice):
    first, second = TicketFactory(), TicketFactory()
    assert services.link_to_ticket(article=draft, ticket=first, agent=alice) is True
    assert services.link_to_ticket(article=draft, ticket=first, agent=alice) is False
    services.link_to_ticket(article=draft, ticket=second, agent=alice)
    draft.refresh_from_db()
    assert draft.usage_count == 2 and ArticleUse.objects.count() == 2


def test_find_logs_every_search_with_its_result_count(draft, alice):
    services.find("退货", user=alice.user, source="admin", public_only=False)
    services.find("量子纠缠", user=None, source="api", public_only=True)
    logs = {log.query: log for log in SearchLog.objects.all()}
    assert logs["退货"].results == 1 and logs["退货"].user == alice.user
    assert logs["量子纠缠"].results == 0 and logs["量子纠缠"].public is True


# --- canned replies ---------------------------------------------------------------------


def test_canned_replies_are_global_or_for_the_agents_teams(alice, bob, support_team, billing_team):
    CannedReply.objects.create(title="全局", body="您好")
    CannedReply.objects.create(title="支持组", body="支持", team=support_team)
    CannedReply.objects.create(title="账单组", body="账单", team=billing_team)
    CannedReply.objects.create(title="停用", body="x", is_active=False)
    assert sorted(r.title for r in services.canned_replies_for(alice)) == ["全局", "支持组"]
    assert sorted(r.title for r in services.canned_replies_for(bob)) == ["全局", "账单组"]


def test_placeholders_are_filled_for_the_ticket_and_unknown_ones_left_as_written(alice):
    ticket = TicketFactory(customer=CustomerFactory(name="张三"))
    reply = CannedReply.objects.create(
        title="t", body="{customer_name}您好,我是{agent_name},工单 {ticket_ref}。{expected_reply_time} {order_id}",
    )
    text = services.render_canned_reply(reply, ticket=ticket, agent=alice)
    assert text == f"张三您好,我是Alice,工单 {ticket.reference}。{{expected_reply_time}} {{order_id}}"


# --- training cases ---------------------------------------------------------------------


def test_a_solved_ticket_becomes_an_anonymised_training_case(tom):
    customer = CustomerFactory(name="王小明", phone="13912345678", email="xiaoming@example.com")
    ticket = TicketFactory(customer=customer, subject="王小明的退款", status=Ticket.Status.SOLVED)
    MessageFactory(ticket=ticket, body="我是王小明,电话 13912345678,邮箱 xiaoming@example.com,身份证 110101199003071234")
    MessageFactory(ticket=ticket, author_kind=Message.AuthorKind.AGENT, body="王小明您好,已为您退款。")
    MessageFactory(ticket=ticket, author_kind=Message.AuthorKind.AGENT, body="内部:客户很着急", is_internal=True)
    case = services.archive_case(ticket=ticket, actor=tom, lessons="先致歉再处理")
    text = repr(case.transcript) + case.title
    for secret in ("王小明", "13912345678", "xiaoming@example.com", "110101199003071234", "内部"):
        assert secret not in text
    assert [line["role"] for line in case.transcript] == ["customer", "agent"]
    assert TrainingCase.objects.get().source_ticket == ticket


def test_an_open_ticket_cannot_become_a_training_case(tom):
    ticket = TicketFactory(status=Ticket.Status.OPEN)
    MessageFactory(ticket=ticket)
    with pytest.raises(DomainError):
        services.archive_case(ticket=ticket, actor=tom)


# --- review reminders -------------------------------------------------------------------


def test_owners_are_reminded_of_overdue_reviews_once_a_week(draft, alice, lena):
    article = published(draft, author=alice.user, reviewer=lena.user)
    alice.user.email = "alice@example.com"
    alice.user.save()
    due = article.review_due_on
    assert services.remind_overdue_reviews(today=due - timedelta(days=1)) == 0
    assert services.remind_overdue_reviews(today=due) == 1
    assert services.remind_overdue_reviews(today=due + timedelta(days=3)) == 0
    assert services.remind_overdue_reviews(today=due + timedelta(days=7)) == 1
    notes = Notification.objects.filter(recipient=alice.user, kind="kb_review_due")
    assert notes.count() == 2 and "退货流程" in notes.first().text


def test_the_reminder_email_goes_out_after_commit(alice, lena, django_capture_on_commit_callbacks):
    article = services.create_article(actor=alice.user, title="发票", body="x")
    published(article, author=alice.user, reviewer=lena.user)
    alice.user.email = "alice@example.com"
    alice.user.save()
    article.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.remind_overdue_reviews(today=article.review_due_on) == 1
    assert mail.outbox == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]


def test_reindex_kb_rebuilds_the_search_words(draft):
    from django.core.management import call_command

    from knowledge import search

    Article.objects.filter(pk=draft.pk).update(search_title="", search_body="", search_vector=None)
    assert search.search("退货流程") == []
    call_command("reindex_kb", stdout=open("/dev/null", "w"))
    assert [hit.slug for hit in search.search("退货流程")] == ["returns"]


# --- found in review --------------------------------------------------------------------


def test_an_unreviewed_change_of_audience_never_reaches_public_readers(alice, lena):
    from knowledge import search

    article = services.create_article(actor=alice.user, title="退款审批规则", body="超过 500 元需主管审批。", slug="internal-rule")
    published(article, author=alice.user, reviewer=lena.user)
    services.update_article(article=article, actor=alice.user, changes={"audience": "public"})
    article.refresh_from_db()
    assert article.is_live and article.live_audience == "internal"
    assert search.visible(public_only=True, live_only=True).filter(pk=article.pk).exists() is False
    assert search.search("退款审批", public_only=True) == []
    services.submit_for_review(article=article, actor=alice.user)
    services.publish(article=article, reviewer=lena.user)
    assert [hit.slug for hit in search.search("退款审批", public_only=True)] == ["internal-rule"]


def test_nobody_who_wrote_part_of_the_change_may_publish_it(alice, lena, bob, tom):
    article = services.create_article(actor=tom, title="换货", body="第一版")
    published(article, author=tom, reviewer=lena.user)
    services.update_article(article=article, actor=lena.user, changes={"body": "组长写的内容"})
    services.update_article(article=article, actor=bob.user, changes={"title": "换货须知"})  # someone else touches it
    services.submit_for_review(article=article, actor=bob.user)
    with pytest.raises(DomainError) as refused:
        services.publish(article=article, reviewer=lena.user)
    assert refused.value.code == "self_review"
    services.publish(article=article, reviewer=tom)  # tom wrote nothing since the last publish


def test_reverting_to_a_reviewers_own_version_does_not_let_them_publish_it(alice, lena, tom):
    article = services.create_article(actor=alice.user, title="发票", body="原文")
    published(article, author=alice.user, reviewer=tom)
    services.update_article(article=article, actor=lena.user, changes={"body": "组长的版本"})
    lenas = article.history.latest("history_id").history_id
    services.update_article(article=article, actor=alice.user, changes={"body": "客服的版本"})
    services.revert(article=article, history_id=lenas, actor=alice.user)
    services.submit_for_review(article=article, actor=alice.user)
    with pytest.raises(DomainError):
        services.publish(article=article, reviewer=lena.user)


def test_a_stale_review_is_refused(draft, alice, lena):
    services.submit_for_review(article=draft, actor=alice.user)
    seen = Article.objects.get(pk=draft.pk).updated_at
    services.update_article(article=draft, actor=alice.user, changes={"body": "偷换"})
    services.submit_for_review(article=draft, actor=alice.user)
    with pytest.raises(DomainError) as refused:
        services.publish(article=draft, reviewer=lena.user, seen_version=seen, check_seen=True)
    assert refused.value.code == "changed"


def test_the_customers_name_in_a_canned_reply_is_masked_for_who_may_not_see_it(alice, iris):
    ticket = TicketFactory(customer=CustomerFactory(name="王小明"))
    reply = CannedReply.objects.create(title="t", body="{customer_name}您好")
    assert services.render_canned_reply(reply, ticket=ticket, viewer=iris) == "王**您好"
    assert services.render_canned_reply(reply, ticket=ticket, viewer=alice.user) == "王小明您好"


def test_searches_are_logged_without_phone_numbers_or_emails(db):
    services.find("我的手机 13800138000 邮箱 wang.xm@example.com 退货", user=None, source="api", public_only=True)
    log = SearchLog.objects.get()
    assert "13800138000" not in log.query + log.normalized and "wang.xm@example.com" not in log.query + log.normalized


def test_a_training_case_masks_the_customers_phone_however_it_is_written_and_their_ids(tom):
    from tests.factories import CustomerIdentityFactory

    customer = CustomerFactory(name="王小明", phone="+8613800138000")
    CustomerIdentityFactory(customer=customer, external_id="wxm_1988")
    ticket = TicketFactory(customer=customer, status=Ticket.Status.SOLVED)
    MessageFactory(ticket=ticket, body="电话 138 0013 8000,也可以打 138-0013-8000,微信 wxm_1988")
    case = services.archive_case(ticket=ticket, actor=tom)
    body = case.transcript[0]["body"]
    assert "0013" not in body and "wxm_1988" not in body


def test_revert_skips_tags_and_ticket_categories_deleted_since(alice):
    from helpdesk.models import Tag
    from tests.factories import CategoryFactory

    category = CategoryFactory()
    article = services.create_article(actor=alice.user, title="t", tags=["旧标签"], ticket_categories=[category])
    first = article.history.get().history_id
    services.update_article(article=article, actor=alice.user, changes={"title": "t2"}, tags=[], ticket_categories=[])
    Tag.objects.filter(name="旧标签").delete()
    category.delete()
    services.revert(article=article, history_id=first, actor=alice.user)
    article.refresh_from_db()
    assert article.title == "t" and list(article.tags.all()) == [] and list(article.ticket_categories.all()) == []


def test_an_article_with_a_pending_edit_is_still_reminded_when_due(draft, alice, lena):
    article = published(draft, author=alice.user, reviewer=lena.user)
    services.update_article(article=article, actor=alice.user, changes={"body": "待审核的修改"})
    article.refresh_from_db()
    assert services.remind_overdue_reviews(today=article.review_due_on) == 1
