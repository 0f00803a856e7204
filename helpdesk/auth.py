"""Django's model backend, loading the user's agent profile with the user.

Nearly every staff request asks who the user's agent is (visibility, replies); reading it in
the user's own query saves a query on every page and API call.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class AgentAwareBackend(ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        user = get_user_model()._default_manager.select_related("agent").filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None
