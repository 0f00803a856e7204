"""Masking of customer contact details for roles that must not see them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importable before apps are ready: the error-mail reporter loads it with logging
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

PII_PERMISSION = "helpdesk.view_customer_pii"


def can_see_pii(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and user.has_perm(PII_PERMISSION)


def mask_phone(phone: str) -> str:
    """Keep the first three and last two digits: 138******78."""
    if len(phone) <= 5:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 5) + phone[-2:]


def mask_email(email: str) -> str:
    """Keep the first letter of the local part and the domain: z***@example.com."""
    local, sep, domain = email.partition("@")
    if not sep:
        return "*" * len(email)
    return (local[:1] + "***") + "@" + domain


def mask_name(name: str) -> str:
    """Keep the first character, as Chinese services do: 张**."""
    if len(name) <= 1:
        return name
    return name[:1] + "*" * min(len(name) - 1, 3)


def shown_contact(customer, user: AbstractBaseUser | AnonymousUser) -> dict[str, str]:
    """The customer's name, phone, email and external id as `user` may see them."""
    if can_see_pii(user):
        return {
            "name": customer.name, "phone": customer.phone, "email": customer.email, "external_id": customer.external_id
        }
    return masked_contact(customer)


def masked_contact(customer) -> dict[str, str]:
    """The customer's name, phone, email and external id as a role without the PII right sees them."""
    return {
        "name": mask_name(customer.name),
        "phone": mask_phone(customer.phone),
        "email": mask_email(customer.email) if customer.email else "",
        # The shop's or CRM's id finds the customer there, name, phone and all.
        "external_id": "***" if customer.external_id else "",
    }


def texts_shown_to(
    user: AbstractBaseUser | AnonymousUser, customer_ids: Iterable[int], hidden: Iterable[int] = ()
) -> Callable[[int, str], str]:
    """How texts of the customers' conversations (messages, rating comments) read for `user`:
    shown(customer_id, text). As written with the PII right; else without the customer's current
    and past name, phone (however typed), email and ids, and with anything masked that the
    policy masks (mask_text): helpdesk.privacy's scrubber, three queries in all. `hidden`
    customers (tickets.queries.hidden_customers) read scrubbed even with the PII right."""
    hidden = set(hidden)
    if can_see_pii(user) and not hidden:
        return _as_written
    from .privacy import (
        scrubbers_for,  # privacy reads every app's models; this module loads before them
    )

    scrub_all = not can_see_pii(user)
    scrubbers = scrubbers_for(set(customer_ids) if scrub_all else hidden)
    return lambda customer_id, text: scrubbers[customer_id](text) if customer_id in scrubbers else text


def text_shown_to(user: AbstractBaseUser | AnonymousUser, customer_id: int, hidden: bool = False) -> Callable[[str], str]:
    """texts_shown_to for one customer's conversation: shown(text)."""
    shown = texts_shown_to(user, [customer_id], hidden=[customer_id] if hidden else ())
    return lambda text: shown(customer_id, text)


def _as_written(customer_id: int, text: str) -> str:
    return text


def shown_attachments(attachments: object, shown: Callable[[str], str]) -> list[dict]:
    """A message's attachments with their names and links read through `shown`, like its text:
    files are named after what they show, and links may carry the channel's id of the customer."""
    if not isinstance(attachments, list):
        return []
    return [
        {**item, **{key: shown(item[key]) for key in ("name", "url") if isinstance(item.get(key), str)}}
        for item in attachments
        if isinstance(item, dict)
    ]


# What customers type into a conversation: Chinese mobile numbers, emails, resident ID numbers
# (18 characters, the last may be X) and bank card numbers (16-19 digits, spaces allowed).
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
_BANK_CARD = re.compile(r"(?<!\d)(\d{4})(?:[ -]?\d){8,11}([ -]?\d{4})(?!\d)")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{6}(\d{2})(?!\d)")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


_CONTACT_LIKE = re.compile(r"@|\d{5,}")


def looks_like_contact(term: str) -> bool:
    """Whether a search term could be a phone, email, ID or card number (spaces and dashes
    ignored): searching text for it would confirm it to a role that may not see it."""
    return bool(_CONTACT_LIKE.search(re.sub(r"[\s\-]", "", term)))


def mask_text(text: str) -> str:
    """The text with phone numbers, emails, ID numbers and bank card numbers masked."""
    text = _ID_NUMBER.sub(lambda m: m.group(1) + "*" * 8 + m.group(2)[-1:].rjust(4, "*"), text)
    text = _BANK_CARD.sub(lambda m: m.group(1) + " **** **** " + m.group(2).replace(" ", "").replace("-", ""), text)
    text = _MOBILE.sub(lambda m: m.group(1) + "******" + m.group(2), text)
    return _EMAIL.sub(lambda m: m.group(1) + "***@" + m.group(2), text)
