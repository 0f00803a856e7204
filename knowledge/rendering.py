"""Markdown to safe HTML, and to plain text for search and snippets.

markdown-it renders with raw HTML switched off (a <script> in the source comes out as text) and
refuses javascript: and data: links; nh3 (ammonia) then keeps only the tags and attributes an
article needs, so even a renderer bug cannot put running code on the page.
"""

from __future__ import annotations

import html
import re

import nh3
from markdown_it import MarkdownIt

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table").enable("strikethrough")

TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
}
ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto", "tel"}
_SPACES = re.compile(r"\s+")


def to_html(markdown: str) -> str:
    """The article body as HTML that is safe to put on any page."""
    rendered = _MARKDOWN.render(markdown or "")
    return nh3.clean(rendered, tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES, link_rel="noopener noreferrer nofollow")


def to_text(markdown: str) -> str:
    """The words a reader sees, without markup, on one line."""
    stripped = nh3.clean(_MARKDOWN.render(markdown or ""), tags=set())
    return _SPACES.sub(" ", html.unescape(stripped)).strip()
