"""Masking of customer contact details for roles that must not see them."""

from __future__ import annotations

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
    """The customer's name, phone and email as `user` may see them."""
    if can_see_pii(user):
        return {"name": customer.name, "phone": customer.phone, "email": customer.email}
    return {
        "name": mask_name(customer.name),
        "phone": mask_phone(customer.phone),
        "email": mask_email(customer.email) if customer.email else "",
    }
