"""Every route the site serves, from the root URL resolver, with a concrete path for each.

`routes()` walks `get_resolver().url_patterns` through every include (admin, the API's routers),
`example_path()` fills each route's arguments with values from `fill` and checks that the
path resolves back to that very route, and `methods()` says which HTTP methods it answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RegexPattern, RoutePattern

WRITE_METHODS = ("post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    patterns: tuple[Any, ...]  # the pattern objects from the root down to the view's
    name: str | None  # "namespace:name", or None
    callback: Callable[..., Any]

    @property
    def pattern(self) -> str:
        """The route as written, joined: what a failure message names."""
        return "".join(str(p) for p in self.patterns)

    @property
    def label(self) -> str:
        return f"{self.name or '(unnamed)'} [{self.pattern}]"


def routes(urlconf: str | None = None) -> list[Route]:
    return list(_walk(get_resolver(urlconf).url_patterns, (), None))


def _walk(patterns: list[Any], parents: tuple[Any, ...], namespace: str | None) -> Iterator[Route]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from _walk(entry.url_patterns, (*parents, entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield Route((*parents, entry.pattern), name, entry.callback)


def methods(route: Route) -> list[str]:
    """The methods a route's view answers: GET always, then the write methods it handles."""
    callback = route.callback
    actions = getattr(callback, "actions", None)  # a DRF viewset route: method -> action
    if actions:
        handled = set(actions)
    else:
        view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        if view_class is not None:
            handled = {m for m in view_class.http_method_names if hasattr(view_class, m)}
        else:
            handled = {"get", "post"}  # a function view: it may take either
    return ["get", *[m for m in WRITE_METHODS if m in handled]]


def example_path(route: Route, fill: Callable[[Route, str, int], str]) -> str:
    """A path that resolves to `route`, its arguments filled by fill(route, name, position).

    Unnamed regex groups get the name "" and their position. Raises ValueError when the
    built path resolves elsewhere: a route this module cannot reach must not pass unseen.
    """
    path = "/" + "".join(_fill_one(route, p, fill) for p in route.patterns)
    try:
        match = resolve(path)
    except Resolver404:
        raise ValueError(f"{path} does not resolve (route {route.label})") from None
    if match.func is not route.callback:
        raise ValueError(f"{path} resolves to {match.view_name}, not {route.label}")
    return path


_CONVERTER = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")


def _fill_one(route: Route, pattern: Any, fill: Callable[[Route, str, int], str]) -> str:
    if isinstance(pattern, RoutePattern):
        return _CONVERTER.sub(lambda m: fill(route, m.group("name"), 0), str(pattern))
    if isinstance(pattern, RegexPattern):
        return _fill_regex(route, str(pattern), fill)
    raise ValueError(f"Unknown pattern type {type(pattern).__name__} in {route.label}")


def _fill_regex(route: Route, regex: str, fill: Callable[[Route, str, int], str]) -> str:
    """Replace each group with a value, then unescape what is left; good for the simple
    regexes routers and admin sites write (groups, `/?`, `^`, `$`)."""
    out: list[str] = []
    i, position = 0, 0
    while i < len(regex):
        char = regex[i]
        if char == "(":
            end = _group_end(regex, i)
            body = regex[i + 1 : end]
            named = re.match(r"\?P<(?P<name>[^>]+)>", body)
            if named:
                out.append(fill(route, named.group("name"), position))
            elif body.startswith("?:") or not body.startswith("?"):
                out.append(fill(route, "", position))
            position += 1
            i = end + 1
        elif char == "\\" and i + 1 < len(regex):
            out.append(regex[i + 1])
            i += 2
        elif char in "^$":
            i += 1
        elif char == "?" and out and out[-1].endswith("/"):
            i += 1  # "/?": the slash is kept
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _group_end(regex: str, start: int) -> int:
    depth = 0
    i = start
    while i < len(regex):
        if regex[i] == "\\":
            i += 2
            continue
        if regex[i] == "(":
            depth += 1
        elif regex[i] == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"Unbalanced group in {regex!r}")
