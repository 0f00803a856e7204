"""Reading files people bring: encodings, byte-order marks, line numbers, JSON nesting.

Spreadsheets and Windows editors save UTF-8 with a byte-order mark, Chinese Excel saves
GB18030; every reader here reports a byte it cannot decode with its line, not a traceback.
Shared by the ticket import (JSON Lines and CSV), the API's JSON parser and the FAQ import.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator

from django.utils.translation import gettext as _

BOM = codecs.BOM_UTF8
# Names people give the two encodings we read; GBK and GB2312 are subsets of GB18030.
ENCODINGS = {
    "utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8",
    "gb18030": "gb18030", "gbk": "gb18030", "gb2312": "gb18030", "cp936": "gb18030",
}
AUTO = "auto"
SNIFF_BYTES = 64 * 1024
# Deeper JSON than this is refused before json.loads recurses (100,000 "[" overflow its stack).
MAX_JSON_DEPTH = 64

_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class DecodeProblem(ValueError):
    """Bytes that are not text in the expected encoding, and where they are."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def encoding_named(name: str) -> str:
    """The codec for a name a user gave ("auto" stays "auto"); ValueError for anything else."""
    key = name.strip().lower()
    if key == AUTO:
        return AUTO
    if key not in ENCODINGS:
        raise ValueError(_("unknown encoding “%(name)s” (use utf-8, gb18030 or auto)") % {"name": name})
    return ENCODINGS[key]


def sniff_encoding(head: bytes) -> str:
    """UTF-8 if the first bytes decode as UTF-8 (a BOM says so too), else GB18030."""
    if head.startswith(BOM):
        return "utf-8"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The sample may end in the middle of a character: that is still UTF-8.
        if exc.reason == "unexpected end of data" and exc.start >= len(head) - 3:
            return "utf-8"
        return "gb18030"
    return "utf-8"


def _undecodable(raw: bytes, exc: UnicodeDecodeError, encoding: str) -> str:
    return _("bytes %(bytes)s (byte %(column)d of the line) are not valid %(encoding)s text") % {
        "bytes": raw[exc.start:max(exc.end, exc.start + 1)].hex(" "), "column": exc.start + 1, "encoding": encoding.upper(),
    }


def decoded_lines(lines: Iterable[bytes | str], encoding: str = "utf-8") -> Iterator[tuple[int, str | None, str]]:
    """(line number, text or None, why not) for each line; a BOM opening the first line is dropped."""
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, str):
            yield number, (raw.removeprefix("\ufeff") if number == 1 else raw), ""
            continue
        if number == 1:
            raw = raw.removeprefix(BOM)
        try:
            yield number, raw.decode(encoding), ""
        except UnicodeDecodeError as exc:
            yield number, None, _undecodable(raw, exc, encoding)


def decode_text(raw: bytes, encoding: str = "utf-8") -> str:
    """A whole file's text without its BOM; DecodeProblem names the line of the first bad byte."""
    raw = raw.removeprefix(BOM)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw[line_start:raw.find(b"\n", exc.start) if b"\n" in raw[exc.start:] else len(raw)]
        exc.start -= line_start
        raise DecodeProblem(_undecodable(line, exc, encoding), raw.count(b"\n", 0, line_start) + 1) from None


def json_too_deep(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects nest deeper than limit (brackets inside strings do not count).

    Linear in the text and never recursive, so it can run before json.loads."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return True
        elif token in "]}":
            depth -= 1
    return False
