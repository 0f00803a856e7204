"""The inspector's scoring page: masked conversation beside the scorecard; and in a real browser."""

from __future__ import annotations

import shutil

import pytest
from django.urls import reverse

from helpdesk.pii import mask_text
from qa.models import Review, Scorecard

from ..factories import CustomerFactory, MessageFactory, TicketFactory

SECRET_MESSAGE = "我的手机13812345678，身份证11010519491231002X，卡号6222021234567890123，邮箱 zhang.san@example.com"


@pytest.fixture
def review(iris, alice) -> Review:
    ticket = TicketFactory(assignee=alice, status="solved", customer=CustomerFactory(name="张三丰", phone="13900001111"))
    MessageFactory(ticket=ticket, author_kind="customer", body=SECRET_MESSAGE)
    MessageFactory(ticket=ticket, author_kind="agent", author_agent=alice, body="您好，已为您处理")
    return Review.objects.create(
        ticket=ticket, agent=alice, inspector=iris, scorecard_version=Scorecard.objects.get(slug="standard").versions.get()
    )


def test_masking_hides_what_customers_type():
    masked = mask_text(SECRET_MESSAGE)
    for secret in ["13812345678", "11010519491231002X", "6222021234567890123", "zhang.san@example.com"]:
        assert secret not in masked
    assert "138******78" in masked and "z***@example.com" in masked
    assert mask_text("订单号 20261123，金额 199 元") == "订单号 ****，金额 199 元"  # the order number finds the customer too


@pytest.mark.django_db
def test_the_page_masks_the_customer_and_submitting_scores_the_review(client, review, iris):
    client.force_login(iris)
    url = reverse("admin:qa_review_score", args=[review.pk])
    page = client.get(url).content.decode()
    assert "13812345678" not in page and "张三丰" not in page and "13900001111" not in page
    assert "138******78" in page and "您好，已为您处理" in page
    form = {f"points-{c.code}": str(c.max_points) for c in review.scorecard_version.criteria.all()}
    missing = {**form}
    del missing["points-greeting"]
    again = client.post(url, missing)
    assert again.status_code == 200 and "问候语规范" in again.content.decode()  # named, and what was typed is kept
    assert 'value="2" checked' in again.content.decode()
    response = client.post(url, {**form, "points-privacy": "0", "strengths": "态度好"})
    assert response.status_code == 302
    review.refresh_from_db()
    assert (review.status, review.score, review.strengths) == ("submitted", 0, "态度好")


@pytest.mark.django_db
def test_only_the_assigned_inspector_opens_the_page(client, review, tom):
    client.force_login(tom)  # a trainer sees reviews but does not score them
    assert client.get(reverse("admin:qa_review_score", args=[review.pk])).status_code == 403


CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
def test_an_inspector_scores_with_the_keyboard_in_a_real_browser(live_server, review, iris):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    iris.set_password("inspect-me-2026")
    iris.save()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--lang=zh-CN"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        browser.get(live_server.url + reverse("admin:login"))
        browser.find_element(By.NAME, "username").send_keys("iris")
        browser.find_element(By.NAME, "password").send_keys("inspect-me-2026" + Keys.ENTER)
        WebDriverWait(browser, 10).until(lambda b: "login" not in b.current_url)
        browser.get(live_server.url + reverse("admin:qa_review_score", args=[review.pk]))
        assert "13812345678" not in browser.page_source
        loaded = browser.execute_script("return performance.timeOrigin")
        first = browser.find_element(By.CSS_SELECTOR, "fieldset.criterion input[type=radio]")
        first.click()
        # One key per criterion: 2 points each, N/A where allowed for "initiative"; focus moves on by itself.
        codes = [s.get_attribute("data-code") for s in browser.find_elements(By.CSS_SELECTOR, "fieldset.criterion")]
        for code in codes:
            browser.switch_to.active_element.send_keys("n" if code == "initiative" else "2")
        score = browser.find_element(By.ID, "live-score")
        assert score.text == "100.00" and score.get_attribute("data-scored") == str(len(codes) - 1)
        browser.find_element(By.CSS_SELECTOR, "fieldset[data-code=privacy] input[value='0']").click()
        assert score.text == "0.00"  # a critical failure, shown at once
        browser.find_element(By.CSS_SELECTOR, "fieldset[data-code=privacy] input[value='2']").click()
        assert browser.execute_script("return performance.timeOrigin") == loaded  # no reload between criteria
        browser.find_element(By.NAME, "strengths").send_keys("回复及时")
        browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        WebDriverWait(browser, 10).until(lambda b: "/score/" not in b.current_url)
    finally:
        browser.quit()
    review.refresh_from_db()
    assert (review.status, review.score, review.strengths) == ("submitted", 100, "回复及时")
    assert review.scores.get(criterion__code="initiative").points is None
