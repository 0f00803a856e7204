"""The customer's survey page in a real (headless, phone-sized) browser."""

from __future__ import annotations

import shutil

import pytest

from tickets import csat, services
from tickets.models import Csat, CsatSurvey

from ..factories import CustomerFactory, TicketFactory

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
def test_a_customer_rates_on_a_phone_and_sees_the_thank_you_page(live_server, support_team, alice):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    ticket = TicketFactory(team=support_team, assignee=alice, status="open", customer=CustomerFactory(language="en"))
    services.change_status(ticket=ticket, status="solved")
    path = csat.survey_path(CsatSurvey.objects.get(ticket=ticket))

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=390,844"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        browser.get(live_server.url + path)
        assert "How did we do?" in browser.page_source
        # Tap targets a thumb can hit: every star is at least 44 CSS pixels square.
        for label in browser.find_elements(By.CSS_SELECTOR, ".stars label"):
            assert label.size["width"] >= 44 and label.size["height"] >= 44
        # The page fits the phone's width: no sideways scrolling.
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        browser.find_element(By.CSS_SELECTOR, "label[for=star-4]").click()
        assert browser.find_element(By.ID, "star-4").is_selected()
        browser.find_element(By.NAME, "comment").send_keys("Fast and friendly, 谢谢")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 10).until(lambda b: "Thank you" in b.page_source)
        assert "4 stars" in browser.page_source
    finally:
        browser.quit()
    rating = Csat.objects.get(ticket=ticket)
    assert (rating.stars, rating.comment, rating.source, rating.agent) == (4, "Fast and friendly, 谢谢", "survey", alice)
