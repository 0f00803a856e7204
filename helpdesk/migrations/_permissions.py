"""Shared by the role migrations (the loader skips modules named with a leading underscore)."""

from django.contrib.auth.management import create_permissions


def make_permissions(apps) -> None:
    """Permissions are normally made after migrate; make them now so groups can hold them."""
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
