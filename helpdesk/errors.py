from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused an operation; `code` is stable, `message` is for people."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return str(self.message)
