"""Start-up guards for serving in production."""

from __future__ import annotations


def refuse_insecure_key() -> None:
    """Serving with the development key outside DEBUG would make sessions forgeable."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    if settings.DEBUG or settings.TESTING:
        return
    if settings.SECRET_KEY.startswith(settings.INSECURE_KEY_PREFIX):
        raise ImproperlyConfigured("Set SECRET_KEY (or DEBUG=true for local development).")
