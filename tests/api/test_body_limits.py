"""Oversized bodies are refused with 413 before they are read; JSON bodies with a BOM are fine,
too deeply nested ones a 400."""

from __future__ import annotations

import io
import json

import pytest
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.wsgi import WSGIHandler
from django.test import RequestFactory

from tickets.models import Ticket

from .test_imports import line
from .test_tickets import new_ticket

pytestmark = pytest.mark.django_db
# Through the WSGI handler, whose end of request closes the connection: no test transaction.
through_wsgi = pytest.mark.django_db(transaction=True, serialized_rollback=True)
MB = 1024 * 1024


class Unreadable(io.RawIOBase):
    """A body stream that fails the test if anything reads it."""

    def readable(self) -> bool:
        return True

    def read(self, size=-1):
        raise AssertionError("the body was read")

    readline = readinto = read


class Endless(io.RawIOBase):
    """A chunked body that never ends; counts what was read of it."""

    def __init__(self) -> None:
        self.given = 0

    def readable(self) -> bool:
        return True

    def read(self, size=-1):
        size = 65536 if size is None or size < 0 else size
        self.given += size
        return b"x" * size


def call_wsgi(path, stream, headers=None, **environ):
    base = RequestFactory()._base_environ(PATH_INFO=path, REQUEST_METHOD="POST", **environ)
    base["wsgi.input"] = stream
    base.update(headers or {})
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"], answer["headers"] = int(status.split()[0]), dict(response_headers)

    body = b"".join(WSGIHandler()(base, start_response))
    return answer["status"], answer["headers"], body


@through_wsgi
def test_an_oversized_content_length_is_a_413_in_json_before_the_body_is_read():
    status, headers, body = call_wsgi(
        "/api/v1/tickets/", Unreadable(), CONTENT_LENGTH=str(54 * MB), CONTENT_TYPE="application/json"
    )
    assert status == 413 and headers["Content-Type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == "body_too_large" and "10 MB" in error["message"]
    assert error["limit_bytes"] == 10 * MB


@through_wsgi
def test_imports_may_send_more_than_other_calls_but_not_without_limit(settings):
    settings.REQUEST_MAX_BODY_BYTES = 1000
    settings.REQUEST_BODY_LIMITS = {"/api/v1/imports/": 5000}
    assert call_wsgi("/api/v1/imports/tickets", Unreadable(), CONTENT_LENGTH="6000")[0] == 413
    assert call_wsgi("/api/v1/tickets/", Unreadable(), CONTENT_LENGTH="2000")[0] == 413
    # Under its limit an import is read (and refused for want of credentials, not size).
    assert call_wsgi("/api/v1/imports/tickets", io.BytesIO(b"x" * 2000), CONTENT_LENGTH="2000")[0] == 401


@through_wsgi
def test_outside_the_api_the_413_is_plain_text():
    status, headers, body = call_wsgi("/admin/login/", Unreadable(), CONTENT_LENGTH=str(11 * MB))
    assert status == 413 and headers["Content-Type"].startswith("text/plain")
    assert b"10 MB" in body


@through_wsgi
def test_a_chunked_body_is_cut_off_at_the_limit_while_it_streams(settings):
    settings.REQUEST_MAX_BODY_BYTES = 100_000
    stream = Endless()
    status, _headers, body = call_wsgi("/api/v1/tickets/", stream, {"HTTP_TRANSFER_ENCODING": "chunked"})
    assert status == 413 and json.loads(body)["error"]["code"] == "body_too_large"
    assert stream.given <= 100_001


@through_wsgi
def test_a_chunked_import_within_the_limit_is_read_whole(integration):
    body = (line("chunked-1") + "\n").encode()
    status, _headers, answer = call_wsgi(
        "/api/v1/imports/tickets", io.BytesIO(body),
        {"HTTP_TRANSFER_ENCODING": "chunked", "HTTP_AUTHORIZATION": f"Bearer {integration[1]}"},
        CONTENT_TYPE="application/x-ndjson",
    )
    assert status == 200, answer
    assert json.loads(answer)["created"] == 1 and Ticket.objects.filter(external_id="chunked-1").exists()


def test_djangos_own_body_check_answers_413_not_400():
    from helpdesk.body_limit import BodyLimitMiddleware

    request = RequestFactory().post("/api/v1/tickets/", data=b"{}", content_type="application/json")
    response = BodyLimitMiddleware(lambda r: None).process_exception(request, RequestDataTooBig("too big"))
    assert response.status_code == 413 and json.loads(response.content)["error"]["code"] == "body_too_large"


def test_json_nested_too_deep_is_a_400_naming_the_limit(api):
    response = api.post("/api/v1/tickets/", "[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "parse_error" and "64" in error["message"]


def test_json_nested_within_the_limit_reaches_validation(api):
    body = json.dumps(new_ticket(subject=[[[["deep"]]]]))
    response = api.post("/api/v1/tickets/", body, content_type="application/json")
    assert response.status_code == 400 and "subject" in response.json()["error"]["fields"]


def test_a_json_body_with_a_utf8_bom_is_read(api):
    body = b"\xef\xbb\xbf" + json.dumps(new_ticket(), ensure_ascii=False).encode()
    response = api.post("/api/v1/tickets/", body, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert Ticket.objects.get().subject == "退货申请"
