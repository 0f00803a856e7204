"""Everything the system says about itself while a test runs, and a scan of it for customer data.

`Capture` collects every log record (all loggers at DEBUG, rendered by the handlers settings
configure plus a plain message-and-traceback rendering), every Celery message as it is handed
to the broker (the app's `send_task`), and the error mails to ADMINS. `findings()` names each
place a PII value appears, raw or in a common disguise.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

from django.conf import settings
from django.core import mail

STANDARD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
PLAIN = logging.Formatter("%(levelname)s %(name)s %(message)s")


class _Collector(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        texts = [PLAIN.format(record)]  # the message with its traceback, if any
        for handler in logging.getLogger().handlers:  # what settings' handlers would write
            if handler is self or not handler.filter(record):
                continue
            texts.append(handler.format(record))
        for name, value in vars(record).items():  # structured fields a formatter may print
            if name not in STANDARD_ATTRIBUTES and isinstance(value, str | int | float | dict | list | tuple):
                texts.append(f"{name}={value!r}")
        self.sink.append(f"[log {record.name}] " + "\n".join(texts))


@dataclass
class Capture:
    logs: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._collector = _Collector(self.logs)
        self._levels: dict[logging.Logger, int] = {}

    def start(self, monkeypatch: Any) -> Capture:
        """Hook every logger (at DEBUG) and the Celery app; undone with monkeypatch."""
        loggers = [logging.getLogger()] + [
            logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)
        ]
        for logger in loggers:
            self._levels[logger] = logger.level
            logger.setLevel(logging.DEBUG)
            if logger is logging.getLogger() or not logger.propagate:
                logger.addHandler(self._collector)

        from config.celery import app

        def send_task(name: str, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
            message = {"task": name, "args": args, "kwargs": kwargs, "headers": options.get("headers")}
            self.tasks.append(f"[task {name}] " + json.dumps(message, ensure_ascii=False, default=str))
            from celery.result import AsyncResult

            return AsyncResult(options.get("task_id") or "captured", app=app)

        monkeypatch.setattr(app, "send_task", send_task)
        return self

    def stop(self) -> None:
        for logger, level in self._levels.items():
            logger.setLevel(level)
            logger.removeHandler(self._collector)

    def error_mails(self) -> list[str]:
        admins = {entry if isinstance(entry, str) else entry[1] for entry in settings.ADMINS}
        texts = []
        for message in mail.outbox:
            if set(message.to) & admins:
                parts = [message.subject, message.body] + [str(content) for content, _type in getattr(message, "alternatives", [])]
                texts.append("[error mail] " + "\n".join(parts))
        return texts

    def everything(self) -> list[str]:
        return self.logs + self.tasks + self.error_mails()


def disguises(value: str) -> list[re.Pattern[str]]:
    """The value as it may appear: as typed, URL-encoded, JSON-escaped, and for numbers with
    spaces, dashes or a +86 between or before the digits."""
    forms = {value, quote(value), quote_plus(value), json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    patterns = [re.compile(re.escape(form), re.IGNORECASE) for form in forms]
    digits = re.sub(r"\D", "", value)
    if len(digits) >= 11 and len(digits) >= len(value) - 1:  # a phone, ID or card number
        loose = r"[\s\-.]?".join(re.escape(ch) for ch in value)
        patterns.append(re.compile(r"(?<!\d)" + loose + r"(?![\dXx])", re.IGNORECASE))
    return patterns


def findings(texts: list[str], values: dict[str, str]) -> list[str]:
    """Each (kind of value, the text's first line) where a value shows."""
    found = []
    for kind, value in values.items():
        patterns = disguises(value)
        for text in texts:
            match = next((m for p in patterns if (m := p.search(text))), None)
            if match:
                start = max(match.start() - 80, 0)
                found.append(f"{kind} {value!r} in {text.splitlines()[0][:60]}: …{text[start:match.end() + 40]}…")
    return found
