"""Masking of customer contact details for roles that must not see them."""

from __future__ import annotations

import functools
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


# --- the masking policy: what customers type into a conversation --------------------------
#
# One place for every page, API answer, export and search (helpdesk.privacy's scrubber adds the
# customer's own details on top). Kinds masked: settings.PII_MASKED_KINDS; order numbers: the
# settings.PII_ORDER_NUMBER_PATTERN (its group "number", if any, is what is masked). Digits match
# whatever separates them: "139 1234 5678", "139-1234-5678", "+86 139.1234.5678".

PHONE, EMAIL, ID_NUMBER, BANK_CARD, ADDRESS, ORDER_NUMBER = "phone", "email", "id_number", "bank_card", "address", "order_number"
KINDS = (ID_NUMBER, BANK_CARD, PHONE, EMAIL, ADDRESS, ORDER_NUMBER)  # the order they are applied in
DEFAULT_ORDER_NUMBER_PATTERN = (
    r"(?i)(?:订单编号|订单号|订单|单号|order\s*(?:no\.?|number|id|#)?)\s*[:：#]?\s*"
    r"(?P<number>[A-Za-z0-9](?:[A-Za-z0-9_-]){3,39})(?![A-Za-z0-9])"
)

_SEP = r"[ \t\u00a0\u3000.\-]?"  # at most one separator between two digits


def _digits(count: int) -> str:
    return _SEP.join([r"\d"] * count)


_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(" + _digits(6) + ")" + _SEP + _digits(8) + _SEP
                        + "(" + _digits(3) + _SEP + r"[\dXx])(?![0-9A-Za-z])")
_BANK_CARD = re.compile(r"(?<!\d)(\d(?:" + _SEP + r"\d){15,18})(?!\d)")
_MOBILE = re.compile(r"(?<!\d)(?:(?:\+|00)86" + _SEP + r")?(1" + _SEP + "[3-9]" + _SEP + r"\d)" + _SEP
                     + _digits(6) + _SEP + "(" + _digits(2) + r")(?!\d)")
_EMAIL = re.compile(r"([A-Za-z0-9!#$%&'*+/=?^_`{|}~-])[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]*\s*(?:@|＠)\s*"
                    r"([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,})")
# A street and house number (北京市朝阳区建国路88号3号楼2单元501室), or an estate and building
# (阳光小区3栋502室); the city and district before it stay. English: "12 Baker Street, Apt 3".
_NOT_STREET = r"[^\W\d_省市区县镇乡州的在住是址到寄送和与或]"
_UNIT = r"(?:" + _SEP + r"[0-9A-Za-z一二三四五六七八九十百零-]{1,6}" + _SEP + r"(?:号楼|号院|栋|幢|座|单元|层|楼|室|号|户))*"
_ADDRESS = re.compile(
    _NOT_STREET + r"{1,8}?(?:大道|路|街|巷|弄|胡同)" + _SEP + r"[0-9一二三四五六七八九十百零]+" + _SEP + r"(?:号|號|弄)" + _UNIT
    + r"|" + _NOT_STREET + r"{1,8}?(?:小区|花园|大厦|公寓|新村|家园|苑)" + _SEP + r"[0-9A-Za-z一二三四五六七八九十-]{1,6}"
    + _SEP + r"(?:号楼|栋|幢|座)" + _UNIT
    + r"|\b\d{1,6}\s+(?:[A-Z][A-Za-z'-]*\s+){1,4}(?:Street|St|Road|Rd|Avenue|Ave|Boulevard|Blvd|Lane|Ln|Drive|Dr|Way|Court|Ct|Place|Pl)\b\.?"
    r"(?:,?\s*(?:Apt|Apartment|Suite|Unit|Flat|Room|#)\.?\s*[0-9A-Za-z-]+)?"
)


def _only_digits(text: str) -> str:
    return re.sub(r"[^\dXx]", "", text)


def _mask_id(m: re.Match[str]) -> str:
    return _only_digits(m.group(1)) + "*" * 11 + _only_digits(m.group(2))[-1:]


def _mask_card(m: re.Match[str]) -> str:
    return _only_digits(m.group(1))[:4] + " **** **** " + _only_digits(m.group(1))[-4:]


def _mask_mobile(m: re.Match[str]) -> str:
    return _only_digits(m.group(1)) + "******" + _only_digits(m.group(2))


def _mask_order_number(number: str) -> str:
    return "*" * (len(number) - 4) + number[-4:] if len(number) >= 10 else "****"


def _order_numbers(pattern: re.Pattern[str]) -> Callable[[str], str]:
    named = "number" in pattern.groupindex

    def mask(text: str) -> str:
        def one(m: re.Match[str]) -> str:
            if not named or m.group("number") is None:
                return _mask_order_number(m.group(0))
            start, end = m.span("number")
            offset = m.start()
            whole = m.group(0)
            return whole[: start - offset] + _mask_order_number(m.group("number")) + whole[end - offset :]

        return pattern.sub(one, text)

    return mask


@functools.lru_cache(maxsize=8)
def _maskers(kinds: tuple[str, ...], order_pattern: str) -> tuple[Callable[[str], str], ...]:
    by_kind: dict[str, Callable[[str], str]] = {
        ID_NUMBER: lambda text: _ID_NUMBER.sub(_mask_id, text),
        BANK_CARD: lambda text: _BANK_CARD.sub(_mask_card, text),
        PHONE: lambda text: _MOBILE.sub(_mask_mobile, text),
        EMAIL: lambda text: _EMAIL.sub(lambda m: m.group(1) + "***@" + m.group(2), text),
        ADDRESS: lambda text: _ADDRESS.sub("***", text),
        ORDER_NUMBER: _order_numbers(re.compile(order_pattern)),
    }
    return tuple(by_kind[kind] for kind in KINDS if kind in kinds)


def masked_kinds() -> tuple[str, ...]:
    from django.conf import settings

    return tuple(settings.PII_MASKED_KINDS)


def mask_text(text: str) -> str:
    """The text as a role without the PII right reads it: every kind of the policy masked."""
    from django.conf import settings

    if not text:
        return text
    for mask in _maskers(masked_kinds(), settings.PII_ORDER_NUMBER_PATTERN):
        text = mask(text)
    return text


def looks_like_contact(term: str) -> bool:
    """Whether a search term is, or holds, something the policy masks (a phone, email, ID, card,
    address or order number) or a run of five digits that could be part of one."""
    return mask_text(term) != term or bool(re.search(r"\d{5,}", re.sub(r"[\s\-.]", "", term))) or "@" in term
