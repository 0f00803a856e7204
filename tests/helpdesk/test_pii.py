from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from helpdesk.pii import mask_email, mask_name, mask_phone

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
