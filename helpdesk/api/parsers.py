"""The API's JSON parser: DRF's, plus a UTF-8 byte-order mark and a nesting limit.

DRF's parser fails on a BOM (Windows tools write one) and lets json.load recurse until a
RecursionError (a 500) on 100,000 nested "[". The body is already bounded by
helpdesk.body_limit, so reading it whole here is safe.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

from helpdesk.textfiles import BOM, MAX_JSON_DEPTH, json_too_deep


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        raw = stream.read() if stream is not None else b""
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = raw.removeprefix(BOM).decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(_("JSON parse error - the body is not %(encoding)s text: %(reason)s") % {
                "encoding": encoding, "reason": exc,
            }) from None
        if json_too_deep(text):
            raise ParseError(
                _("JSON parse error - arrays and objects nest deeper than %(limit)d levels.") % {"limit": MAX_JSON_DEPTH}
            )
        try:
            return json.loads(text) if self.strict else json.loads(text, parse_constant=None)
        except (ValueError, RecursionError) as exc:
            raise ParseError(_("JSON parse error - %(reason)s") % {"reason": exc}) from None
