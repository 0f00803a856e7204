from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpdesk.models import Channel, CustomerIdentity
from helpdesk.pii import (
    mask_email,
    mask_name,
    mask_phone,
    shown_attachments,
    shown_contact,
    text_shown_to,
    texts_shown_to,
)

from ..factories import CustomerFactory

phones = st.text(alphabet="0123456789+-", min_size=0, max_size=20)


@given(phones)
def test_a_masked_phone_keeps_its_length_and_hides_the_middle(phone):
    masked = mask_phone(phone)
    assert len(masked) == len(phone)
    if len(phone) > 5:
        assert masked[3:-2] == "*" * (len(phone) - 5)
    else:
        assert set(masked) <= {"*"}


@given(st.emails())
def test_a_masked_email_keeps_only_the_first_letter_and_the_domain(email):
    local, _, domain = email.partition("@")
    assert mask_email(email) == local[0] + "***@" + domain


@given(st.text(min_size=2, max_size=30))
def test_a_masked_name_shows_only_its_first_character(name):
    masked = mask_name(name)
    assert masked[0] == name[0] and set(masked[1:]) == {"*"}


# --- what a role reads of a customer and their conversation ---------------------------------

@pytest.mark.django_db
def test_the_external_id_is_masked_like_the_contact_details(iris, ada):
    customer = CustomerFactory(name="李雷", external_id="crm-42-lilei")
    assert shown_contact(customer, ada)["external_id"] == "crm-42-lilei"
    assert shown_contact(customer, iris)["external_id"] == "***"
    assert shown_contact(CustomerFactory(external_id=""), iris)["external_id"] == ""


@pytest.mark.django_db
def test_texts_read_as_written_with_the_pii_right_and_scrubbed_without(iris, ada, django_assert_num_queries):
    customer = CustomerFactory(name="李雷", phone="13911112222", email="li.lei@example.com")
    CustomerIdentity.objects.create(customer=customer, channel=Channel.WECHAT, external_id="oWx-lilei-openid")
    text = "李雷的电话 139 1111 2222，邮箱 li.lei@example.com，openid oWx-lilei-openid，另一个 13800001111"
    for user in (ada, iris):
        user.has_perm("helpdesk.view_customer_pii")  # their permissions, read once per request anyway
    with django_assert_num_queries(0):
        assert text_shown_to(ada, customer.pk)(text) == text
    other = CustomerFactory()
    with django_assert_num_queries(3):  # the customers' details, past and present, and identities
        shown = texts_shown_to(iris, [customer.pk, other.pk])
    masked = shown(customer.pk, text)
    for value in ("李雷", "139 1111 2222", "li.lei@example.com", "oWx-lilei-openid", "13800001111"):
        assert value not in masked
    assert "138******11" in masked  # anyone's phone is masked, not only the customer's


def test_attachment_names_and_links_read_like_the_text():
    files = [{"name": "13911112222.jpg", "url": "https://files.example.com/13911112222", "size": 3}, "junk"]
    assert shown_attachments(files, lambda text: text.replace("13911112222", "x")) == [
        {"name": "x.jpg", "url": "https://files.example.com/x", "size": 3}
    ]
    assert shown_attachments(None, str) == []
