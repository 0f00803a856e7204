"""Error reports without customer data: what Django mails to ADMINS when a request crashes.

Django's report lists the request's query string, form fields and cookies, and in its HTML
form every local variable of every frame: a crash while an agent looks a customer up by phone,
or saves the customer form, would mail the phone, email and whatever the customer wrote. This
reporter keeps the names and blanks the values; exception messages (a database's "Key
(phone)=(…)") go through `helpdesk.pii.mask_text`. Selected by settings'
DEFAULT_EXCEPTION_REPORTER.
"""

from __future__ import annotations

import copy
from typing import Any

from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from .observability import without_secrets
from .pii import mask_text

CLEANSED = SafeExceptionReporterFilter.cleansed_substitute
# Request headers that carry the query string or a page address, which may hold it too.
URL_META = ("QUERY_STRING", "HTTP_REFERER", "REQUEST_URI", "RAW_URI")


class PiiSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Names only: POST values, URL-bearing headers and frame variables are blanked."""

    def get_post_parameters(self, request: Any) -> dict[str, str]:
        return {} if request is None else dict.fromkeys(request.POST, CLEANSED)

    def get_safe_request_meta(self, request: Any) -> dict[str, Any]:
        meta = super().get_safe_request_meta(request)
        return {name: CLEANSED if name in URL_META and value else value for name, value in meta.items()}

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> list[tuple[str, str]]:
        return [(name, CLEANSED) for name in tb_frame.f_locals]


def _without_secret_path(request: Any) -> Any:
    """The request, or a copy whose path and META name no secret URL argument (the survey
    link's token): the report shows the path in its title, its URL and PATH_INFO."""
    if request is None or without_secrets(request.path, request) == request.path:
        return request
    clean = copy.copy(request)
    clean.path, clean.path_info = without_secrets(request.path, request), without_secrets(request.path_info, request)
    clean.META = {k: without_secrets(v, request) if isinstance(v, str) else v for k, v in request.META.items()}
    return clean


class PiiSafeExceptionReporter(ExceptionReporter):
    def __init__(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(_without_secret_path(request), *args, **kwargs)
        self.filter = PiiSafeExceptionReporterFilter()

    def get_traceback_data(self) -> dict[str, Any]:
        data = super().get_traceback_data()
        if self.request is not None:
            data["request_GET_items"] = [(name, CLEANSED) for name in self.request.GET]
            data["request_COOKIES_items"] = [(name, CLEANSED) for name in self.request.COOKIES]
            data["request_insecure_uri"] = str(data.get("request_insecure_uri", "")).split("?", 1)[0]
        if data.get("exception_value"):
            data["exception_value"] = mask_text(str(data["exception_value"]))
        for frame in data.get("frames", []):
            if frame.get("exc_cause") is not None:
                frame["exc_cause"] = mask_text(str(frame["exc_cause"]))
        # The text template asks for it whether or not the exception has notes; a failed
        # lookup would log (at DEBUG) the whole context, request and all.
        data.setdefault("exception_notes", "")
        return data
