"""Importing history through the API: a small file at once, a big one as a job a worker runs."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import BaseParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from helpdesk.api.auth import HasPermission, KeyScope
from helpdesk.api.errors import error_response
from helpdesk.api.idempotency import IdempotentPostMixin
from helpdesk.errors import DomainError
from helpdesk.roles import sees_everything
from helpdesk.textfiles import AUTO, ENCODINGS, encoding_named

from ..import_jobs import start_import_job
from ..imports import import_tickets
from ..models import ImportJob
from .serializers import ImportJobSerializer, ImportReportSerializer

CHUNK = 64 * 1024
CSV_TYPES = ("text/csv", "application/csv")


class RawBodyParser(BaseParser):
    """The body as bytes: JSON Lines and CSV are read line by line by tickets.imports."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> bytes:
        return stream.read() if stream is not None else b""


def _options(request: Request) -> tuple[str, str, bool]:
    """Format (from Content-Type), encoding (?encoding= or the charset) and ?partial=."""
    fmt = "csv" if request.content_type.split(";")[0].strip().lower() in CSV_TYPES else "jsonl"
    charset = next(
        (p.split("=", 1)[1].strip() for p in request.content_type.split(";")[1:] if p.strip().lower().startswith("charset=")),
        "auto",
    )
    try:
        encoding = encoding_named(request.query_params.get("encoding", charset))
    except ValueError as exc:
        raise DomainError("invalid", str(exc), field="encoding") from None
    partial = request.query_params.get("partial", "false").lower()
    if partial not in ("true", "false", "1", "0"):
        raise DomainError("invalid", _("partial must be true or false."), field="partial")
    return fmt, encoding, partial in ("true", "1")


PARAMETERS = [
    OpenApiParameter("partial", bool, description="Import the good lines of a file with bad ones."),
    OpenApiParameter(
        "encoding", str, enum=[AUTO, *ENCODINGS], description="utf-8, gb18030 (gbk, gb2312) or auto (the default)."
    ),
]
BODY = {"application/x-ndjson": {"type": "string"}, "text/csv": {"type": "string"}}


class ImportTicketsView(IdempotentPostMixin, APIView):
    """Import ticket history now: JSON Lines (as `manage.py import_tickets`) or CSV (text/csv)."""

    permission_classes = [IsAuthenticated, KeyScope, HasPermission("tickets.import_tickets")]
    parser_classes = [RawBodyParser]

    @extend_schema(request=BODY, parameters=PARAMETERS, responses={200: ImportReportSerializer})
    def post(self, request: Request) -> Response:
        fmt, encoding, partial = _options(request)
        body = request.data if isinstance(request.data, bytes) else b""  # DRF gives {} for no body
        report = import_tickets(lambda: body.splitlines(keepends=True), fmt=fmt, encoding=encoding, partial=partial)
        if not report.written:
            return _rejected(report)
        return Response(ImportReportSerializer(report.as_dict()).data)


def _rejected(report: Any) -> Response:
    """400 naming each bad line and field; the report beside it."""
    fields: dict[str, list[str]] = {}
    for line, field, message in report.errors[:1000]:
        fields.setdefault(f"lines[{line}]" + (f".{field}" if field else ""), []).append(message)
    message = _("%(n)d line(s) failed; nothing was imported (fix them, or send ?partial=true).") % {"n": report.failed}
    response = error_response("invalid_lines", message, status.HTTP_400_BAD_REQUEST, fields)
    response.data["report"] = ImportReportSerializer(report.as_dict(1000)).data
    return response


class ImportJobCreateView(APIView):
    """Upload a history file of any size up to IMPORT_MAX_BODY_MB: 202, and a worker imports it."""

    permission_classes = [IsAuthenticated, KeyScope, HasPermission("tickets.import_tickets")]

    @extend_schema(request=BODY, parameters=PARAMETERS, responses={202: ImportJobSerializer})
    def post(self, request: Request) -> Response:
        fmt, encoding, partial = _options(request)
        stream = request._request  # read in chunks into storage, never whole into memory
        job = start_import_job(
            chunks=iter(lambda: stream.read(CHUNK), b""), name=request.headers.get("X-File-Name", ""), fmt=fmt,
            encoding=encoding, partial=partial, actor=request.user,
        )
        url = reverse("import-job", kwargs={"job_id": job.pk}, request=request)
        body = ImportJobSerializer(job, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class ImportJobView(APIView):
    """An import job's status, progress, counts and errors (line and field), for its creator."""

    permission_classes = [IsAuthenticated, KeyScope, HasPermission("tickets.import_tickets")]

    @extend_schema(responses=ImportJobSerializer)
    def get(self, request: Request, job_id: int) -> Response:
        jobs = ImportJob.objects.all() if sees_everything(request.user) else ImportJob.objects.filter(created_by=request.user)
        job = jobs.filter(pk=job_id).first()
        if job is None:
            return error_response("not_found", _("No such import job."), status.HTTP_404_NOT_FOUND)
        return Response(ImportJobSerializer(job, context={"request": request}).data)
