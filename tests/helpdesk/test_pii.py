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


# --- the masking policy over generated text (helpdesk.pii.mask_text) -------------------------

from hypothesis import settings as hypothesis_settings  # noqa: E402

from helpdesk.pii import mask_text  # noqa: E402

separators = st.sampled_from(["", "", " ", "-", ".", "\u3000"])
surrounding = st.text(alphabet="我的手机号是请回电谢谢订单退款 abcdefghijklmnopqrstuvwxyzABC,.;:!?，。：", max_size=12)


def spaced(digits: str, draw) -> str:
    """The digits with a separator (or none) drawn between each pair, as people type them."""
    return digits[0] + "".join(draw(separators) + ch for ch in digits[1:])


@st.composite
def numbers_in_text(draw):
    kind = draw(st.sampled_from(["mobile", "id", "card"]))
    if kind == "mobile":
        digits = "1" + draw(st.sampled_from("3456789")) + draw(st.text("0123456789", min_size=9, max_size=9))
    elif kind == "id":
        digits = draw(st.text("0123456789", min_size=17, max_size=17)) + draw(st.sampled_from("0123456789X"))
    else:
        digits = draw(st.sampled_from("3456")) + draw(st.text("0123456789", min_size=15, max_size=18))
    prefix = draw(st.sampled_from(["", "+86 ", "+86-"])) if kind == "mobile" else ""
    return digits, draw(surrounding) + prefix + spaced(digits, draw) + draw(surrounding)


def only_digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit() or ch in "Xx")


@hypothesis_settings(max_examples=300)
@given(numbers_in_text())
def test_a_phone_id_or_card_number_is_masked_whatever_separates_its_digits(case):
    digits, text = case
    masked = mask_text(text)
    assert digits not in only_digits(masked), masked
    # At most what the policy keeps: the first six and the last one of an ID, four and four of a
    # card, three and two of a mobile number.
    assert sum(ch.isdigit() for ch in masked) <= sum(ch.isdigit() for ch in text) - 6


@hypothesis_settings(max_examples=200)
@given(st.emails(), surrounding, surrounding, st.sampled_from(["", " "]))
def test_an_email_is_masked_in_chinese_or_english_text(email, before, after, space):
    local, _at, domain = email.partition("@")
    text = f"{before} {local}{space}@{space}{domain} {after}"
    masked = mask_text(text)
    assert email not in masked and f"{local}@" not in masked.replace(" ", "")
    assert domain in masked  # the domain stays: it names a company, not a person


ORDER = "订单号 DD2026112312345678"


@pytest.mark.parametrize("text, hidden", [
    ("订单号 DD2026112312345678 还没发货", "DD2026112312345678"),
    ("order no. 8812345678901 refund", "8812345678901"),
    ("我住在北京市朝阳区建国路88号3号楼2单元501室", "建国路88号"),
    ("寄到阳光小区3栋502室", "阳光小区3栋"),
    ("ship to 221 Baker Street, Apt 3 please", "221 Baker Street"),
])
def test_order_numbers_and_addresses_are_masked(text, hidden):
    assert hidden not in mask_text(text)


def test_which_kinds_are_masked_and_the_order_number_pattern_come_from_settings(settings):
    text = "手机 13912345678，订单 AB-7788-9900"
    assert "13912345678" not in mask_text(text)
    settings.PII_MASKED_KINDS = ["email"]
    assert mask_text(text) == text
    settings.PII_MASKED_KINDS = ["order_number"]
    settings.PII_ORDER_NUMBER_PATTERN = r"AB-\d{4}-\d{4}"
    assert mask_text(text) == "手机 13912345678，订单 ********9900"
