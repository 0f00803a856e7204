"""Agent assist on the ticket page: suggested articles, canned replies filled in for the ticket,
usage counted when an inserted article is sent, feedback, and archiving a training case."""

from __future__ import annotations

import shutil

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from helpdesk.models import Channel
from knowledge import services
from knowledge.models import Article, ArticleUse, CannedReply, SearchLog, TrainingCase
from tests.factories import CustomerFactory, MessageFactory, TicketFactory
from tickets.models import Message, Ticket

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]
TICKETS = reverse("admin:tickets_ticket_changelist")


def page_url(ticket: Ticket) -> str:
    return reverse("admin:tickets_ticket_change", args=[ticket.pk])


def reply_url(ticket: Ticket) -> str:
    return reverse("admin:tickets_ticket_reply", args=[ticket.pk])


def feedback_url(article: Article) -> str:
    return reverse("admin:knowledge_article_feedback", args=[article.pk])


def shown_messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def live(author, reviewer, **fields) -> Article:
    article = services.create_article(actor=author, **fields)
    services.submit_for_review(article=article, actor=author)
    return services.publish(article=article, reviewer=reviewer)


@pytest.fixture
def band_article(alice, lena) -> Article:
    return live(
        alice.user, lena.user, title="手环连接失败怎么办", slug="band-connection", audience="public",
        body="请先重启手环,再打开手机蓝牙重新配对。如果仍然连接失败,请把手环恢复出厂设置。",
    )


@pytest.fixture
def customer():
    return CustomerFactory(name="王小明", phone="13812345678", email="xiaoming@example.com")


@pytest.fixture
def ticket(support_team, customer) -> Ticket:
    ticket = TicketFactory(team=support_team, customer=customer, subject="手环连接失败", status=Ticket.Status.OPEN)
    MessageFactory(ticket=ticket, body="王小明:我的手环连接失败了,电话 13812345678")
    return ticket


@pytest.fixture
def canned(support_team, billing_team) -> dict[str, CannedReply]:
    return {
        "hello": CannedReply.objects.create(
            title="称呼客户问候", shortcut="hello", body="{customer_name}您好,我是{agent_name},工单 {ticket_ref} 已收到。",
        ),
        "later": CannedReply.objects.create(title="稍后回复", body="预计 {expected_reply_time} 前答复。", team=support_team),
        "billing": CannedReply.objects.create(title="账务组专用", body="账单", team=billing_team),
        "off": CannedReply.objects.create(title="停用的", body="旧话术", is_active=False),
    }


# --- suggestions ----------------------------------------------------------------------------


def test_the_ticket_page_suggests_live_articles_for_the_conversation(client, alice, lena, ticket, band_article):
    services.create_article(actor=alice.user, title="手环连接失败 草稿", slug="band-draft", body="还没审")
    client.force_login(alice.user)
    response = client.get(page_url(ticket))
    page = response.content.decode()
    assert [s["id"] for s in response.context["kb_suggestions"]] == [band_article.pk]
    assert "手环连接失败怎么办" in page and "草稿" not in page
    assert f'class="button kb-insert" data-article="{band_article.pk}"' in page
    assert "<mark>" in response.context["kb_suggestions"][0]["snippet"]
    assert f'action="{feedback_url(band_article)}"' in page
    assert "knowledge/assist.js" in page


def test_viewing_the_ticket_page_writes_no_search_log_and_never_searches_the_customers_details(
    client, alice, ticket, band_article, monkeypatch,
):
    from knowledge import search

    asked = []
    real = search.search
    monkeypatch.setattr(search, "search", lambda query, **kw: asked.append(query) or real(query, **kw))
    client.force_login(alice.user)
    assert client.get(page_url(ticket)).status_code == 200
    assert SearchLog.objects.count() == 0
    assert len(asked) == 1 and "王小明" not in asked[0] and "13812345678" not in asked[0]


def test_the_inserted_text_is_the_title_and_the_start_of_the_published_text(client, alice, ticket, band_article):
    client.force_login(alice.user)
    suggestion = client.get(page_url(ticket)).context["kb_assist_data"]["articles"][0]
    assert suggestion["title"] == "手环连接失败怎么办"
    assert suggestion["text"].startswith("【手环连接失败怎么办】\n请先重启手环")


def test_a_public_article_carries_its_help_centre_link_when_one_is_configured(client, alice, lena, ticket, settings):
    settings.KB_PUBLIC_ARTICLE_URL = "https://help.example.com/kb/{slug}"
    live(alice.user, lena.user, title="手环连接指南", slug="band-guide", body="打开蓝牙。", audience="public")
    client.force_login(alice.user)
    text = client.get(page_url(ticket)).context["kb_assist_data"]["articles"][0]["text"]
    assert text.endswith("https://help.example.com/kb/band-guide")


def test_without_a_match_the_panel_says_so(client, alice, support_team):
    ticket = TicketFactory(team=support_team, subject="完全无关的问题")
    client.force_login(alice.user)
    assert "No published article matches this conversation yet." in client.get(page_url(ticket)).content.decode()


def test_a_reader_who_cannot_reply_sees_suggestions_but_no_insert_buttons(client, tom, ticket, band_article, canned):
    client.force_login(tom)  # trainers see every ticket and do not answer
    response = client.get(page_url(ticket))
    page = response.content.decode()
    assert "手环连接失败怎么办" in page
    assert "kb-insert" not in page and "kb-canned-select" not in page


# --- canned replies -------------------------------------------------------------------------


def test_canned_replies_are_filled_in_for_the_ticket(client, alice, ticket, canned):
    client.force_login(alice.user)
    response = client.get(page_url(ticket))
    texts = {c["title"]: c["text"] for c in response.context["kb_canned"]}
    assert texts == {
        "称呼客户问候": f"王小明您好,我是Alice,工单 {ticket.reference} 已收到。",
        "稍后回复": "预计 {expected_reply_time} 前答复。",  # no SLA clock runs: left for the agent
    }
    page = response.content.decode()
    assert f'title="王小明您好,我是Alice,工单 {ticket.reference} 已收到。"' in page
    assert "账务组专用" not in page and "停用的" not in page
    assert 'id="kb-assist-data"' in page


def test_the_ticket_page_costs_the_same_queries_for_1_or_10_canned_replies_and_suggestions(
    client, alice, lena, ticket, support_team, django_assert_max_num_queries,
):
    live(alice.user, lena.user, title="手环连接失败 1", slug="b1", body="重启")
    CannedReply.objects.create(title="r0", body="{customer_name} {ticket_ref} {expected_reply_time}")
    client.force_login(alice.user)
    client.get(page_url(ticket))  # warm the search tokenizer
    with CaptureQueriesContext(connection) as few:
        response = client.get(page_url(ticket))
    assert len(response.context["kb_suggestions"]) == 1 and len(response.context["kb_canned"]) == 1
    for n in range(2, 7):
        live(alice.user, lena.user, title=f"手环连接失败 {n}", slug=f"b{n}", body="重启")
    for n in range(9):
        CannedReply.objects.create(title=f"r{n + 1}", body="{customer_name} {ticket_ref}", team=support_team)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(page_url(ticket))
    assert len(response.context["kb_suggestions"]) == 5 and len(response.context["kb_canned"]) == 10


# --- inserted articles ----------------------------------------------------------------------


def test_a_reply_with_an_inserted_article_counts_its_use_once_per_ticket(client, alice, ticket, band_article, support_team):
    client.force_login(alice.user)
    response = client.post(reply_url(ticket), {"body": "请先重启手环", "articles": str(band_article.pk)})
    assert response.status_code == 302
    use = ArticleUse.objects.get()
    assert (use.article, use.ticket, use.agent) == (band_article, ticket, alice)
    band_article.refresh_from_db()
    assert band_article.usage_count == 1

    client.post(reply_url(ticket), {"body": "再试一次", "articles": f"{band_article.pk},{band_article.pk}"})
    band_article.refresh_from_db()
    assert band_article.usage_count == 1 and ArticleUse.objects.count() == 1

    other = TicketFactory(team=support_team, status=Ticket.Status.OPEN)
    client.post(reply_url(other), {"body": "请先重启手环", "articles": str(band_article.pk), "internal": "on"})
    band_article.refresh_from_db()
    assert band_article.usage_count == 2


def test_a_reply_without_inserted_articles_links_none(client, alice, ticket, band_article):
    client.force_login(alice.user)
    client.post(reply_url(ticket), {"body": "您好"})
    assert not ArticleUse.objects.exists()


def test_a_draft_or_unknown_article_id_is_passed_over(client, alice, ticket):
    draft = services.create_article(actor=alice.user, title="草稿", slug="draft")
    client.force_login(alice.user)
    response = client.post(reply_url(ticket), {"body": "您好", "articles": f"{draft.pk},999999"})
    assert response.status_code == 302
    assert ticket.messages.filter(body="您好").exists() and not ArticleUse.objects.exists()


def test_a_malformed_article_list_is_a_form_error_and_nothing_is_sent(client, alice, ticket):
    client.force_login(alice.user)
    response = client.post(reply_url(ticket), {"body": "您好", "articles": "1,abc"})
    assert response.status_code == 400
    assert "articles" in response.context["reply_form"].errors
    assert not ticket.messages.filter(body="您好").exists()


# --- feedback -------------------------------------------------------------------------------


def test_an_agent_marks_a_suggestion_helpful_and_may_change_their_mind(client, alice, band_article):
    client.force_login(alice.user)
    json = {"HTTP_ACCEPT": "application/json"}
    answer = client.post(feedback_url(band_article), {"helpful": "1"}, **json)
    assert answer.status_code == 200 and (answer.json()["helpful"], answer.json()["unhelpful"]) == (1, 0)
    answer = client.post(feedback_url(band_article), {"helpful": "0"}, **json)
    assert (answer.json()["helpful"], answer.json()["unhelpful"]) == (0, 1)
    assert band_article.feedback.get().source == "agent"


def test_feedback_without_javascript_returns_to_the_ticket(client, alice, ticket, band_article):
    client.force_login(alice.user)
    response = client.post(feedback_url(band_article), {"helpful": "1", "next": page_url(ticket)})
    assert response.status_code == 302 and response["Location"] == page_url(ticket)
    response = client.post(feedback_url(band_article), {"helpful": "1", "next": "https://evil.example.com/"})
    assert response["Location"] == reverse("admin:knowledge_article_changelist")


def test_bad_feedback_is_a_clear_error(client, alice, olga, band_article):
    draft = services.create_article(actor=alice.user, title="草稿", slug="draft")
    client.force_login(alice.user)
    json = {"HTTP_ACCEPT": "application/json"}
    bad = client.post(feedback_url(band_article), {"helpful": "maybe"}, **json)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "helpful"
    refused = client.post(feedback_url(draft), {"helpful": "1"}, **json)
    assert refused.status_code == 400 and "Only published articles take feedback." in refused.json()["error"]["message"]
    assert client.get(feedback_url(band_article), **json).status_code == 405
    assert client.post(reverse("admin:knowledge_article_feedback", args=[999999]), {"helpful": "1"}, **json).status_code == 404
    client.force_login(olga)  # staff without a role
    assert client.post(feedback_url(band_article), {"helpful": "1"}, **json).status_code == 403
    band_article.refresh_from_db()
    assert (band_article.helpful_count, band_article.unhelpful_count) == (0, 0)


# --- training cases -------------------------------------------------------------------------


@pytest.fixture
def solved(support_team, customer) -> Ticket:
    ticket = TicketFactory(
        team=support_team, customer=customer, subject="王小明的退款", status=Ticket.Status.SOLVED, channel=Channel.EMAIL,
    )
    MessageFactory(ticket=ticket, body="我是王小明,电话 13812345678,邮箱 xiaoming@example.com,要退款")
    MessageFactory(ticket=ticket, author_kind=Message.AuthorKind.AGENT, body="王小明您好,已为您退款")
    MessageFactory(ticket=ticket, author_kind=Message.AuthorKind.AGENT, body="内部:客户很急", is_internal=True)
    return ticket


def archive(client, ticket: Ticket):
    return client.post(
        TICKETS, {"action": "archive_as_training_case", "_selected_action": [ticket.pk], "index": 0}, follow=True,
    )


def test_a_trainer_archives_a_solved_ticket_as_an_anonymised_case(client, tom, solved):
    client.force_login(tom)
    assert "archive_as_training_case" in client.get(page_url(solved)).content.decode()
    response = archive(client, solved)
    case = TrainingCase.objects.get()
    assert response.redirect_chain[-1][0] == reverse("admin:knowledge_trainingcase_change", args=[case.pk])
    text = " ".join(line["body"] for line in case.transcript) + case.title
    for detail in ("王小明", "13812345678", "xiaoming@example.com", "客户很急"):
        assert detail not in text
    assert [line["role"] for line in case.transcript] == ["customer", "agent"]
    assert case.created_by == tom and case.source_ticket == solved
    page = response.content.decode()
    assert "13812345678" not in page and "王小明" not in page


def test_an_open_ticket_is_refused_with_the_reason(client, lena, ticket):
    client.force_login(lena.user)
    response = archive(client, ticket)
    assert any("Only a solved or closed ticket can become a training case." in m for m in shown_messages(response))
    assert not TrainingCase.objects.exists()
    assert "archive_as_training_case" not in client.get(page_url(ticket)).content.decode()


def test_agents_cannot_archive_training_cases(client, alice, solved):
    client.force_login(alice.user)
    assert "archive_as_training_case" not in client.get(page_url(solved)).content.decode()
    archive(client, solved)
    assert not TrainingCase.objects.exists()


# --- in a real browser ------------------------------------------------------------------------

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
def test_an_agent_inserts_an_article_and_a_canned_reply_and_sends_them(live_server, client, alice, lena, ticket, canned):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    article = live(alice.user, lena.user, title="手环连接失败怎么办", slug="band", audience="public", body="请先重启手环,再重新配对。")
    client.force_login(alice.user)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        browser.get(live_server.url + "/admin/login/")
        browser.add_cookie({"name": "sessionid", "value": client.cookies["sessionid"].value, "path": "/"})
        browser.get(live_server.url + page_url(ticket))
        box = browser.find_element(By.CSS_SELECTOR, ".reply-box textarea[name=body]")

        # Helpful, in the background: the page (and what is typed) stays.
        box.send_keys("草稿文字")
        browser.find_element(By.CSS_SELECTOR, "form.kb-feedback button[value='1']").click()
        WebDriverWait(browser, 10).until(lambda b: b.find_element(By.CSS_SELECTOR, ".kb-count-helpful").text == "1")
        assert box.get_attribute("value") == "草稿文字"
        box.clear()

        box.send_keys("/hello", Keys.TAB)
        assert box.get_attribute("value") == f"王小明您好,我是Alice,工单 {ticket.reference} 已收到。"
        Select(browser.find_element(By.ID, "kb-canned-select")).select_by_value(str(canned["later"].pk))
        assert "预计" in browser.find_element(By.CSS_SELECTOR, ".kb-canned-preview").text
        browser.find_element(By.CSS_SELECTOR, "button.kb-insert").click()
        assert "【手环连接失败怎么办】" in box.get_attribute("value")
        assert browser.find_element(By.NAME, "articles").get_attribute("value") == str(article.pk)
        browser.find_element(By.CSS_SELECTOR, ".reply-box input[type=submit]").click()
        WebDriverWait(browser, 10).until(lambda b: ticket.messages.filter(author_kind="agent").exists())
    finally:
        browser.quit()
    sent = ticket.messages.get(author_kind="agent")
    assert sent.body.startswith("王小明您好") and "【手环连接失败怎么办】" in sent.body
    article.refresh_from_db()
    assert (article.usage_count, article.helpful_count) == (1, 1)
    assert ArticleUse.objects.get().ticket == ticket


def test_an_internal_article_is_suggested_to_the_agent_but_never_offered_for_the_reply(client, alice, lena, ticket):
    live(alice.user, lena.user, title="手环连接失败的内部处理", slug="band-internal", body="内部:可直接换新。")
    client.force_login(alice.user)
    response = client.get(page_url(ticket))
    data = response.context["kb_assist_data"]
    assert data["articles"] == []  # nothing the reply box could insert
    page = response.content.decode()
    assert "手环连接失败的内部处理" in page and "kb-insert" not in page
