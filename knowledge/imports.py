"""Import an existing FAQ: a folder of Markdown files with YAML front matter (manage.py import_kb).

    ---
    title: 手环无法连接怎么办
    slug: band-cannot-connect          # default: the file name without .md
    category: 产品/手环                 # a slug or a name; "parent/child" walks the tree
    tags: [手环, 蓝牙]                  # or "手环, 蓝牙"
    audience: public                   # internal (default) or public
    status: published                  # draft (default), in_review, published or archived
    language: zh-hans                  # optional
    owner: lena                        # optional: a username
    ---
    正文(Markdown)…

Files are matched to articles by slug, and every write goes through knowledge.services, so an
import is versioned and reviewed like an edit in the admin: a changed published article waits
for review (or is published at once by --reviewer when its file asks for published). Missing
categories and tags are created. A key the file leaves out keeps the article's value, and
running the same import twice changes nothing. A bad file is reported and skipped; the others
are imported, each in its own transaction.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_unicode_slug
from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from helpdesk.errors import DomainError
from helpdesk.textfiles import DecodeProblem, decode_text

from . import services
from .models import Article, Audience, KbCategory

S = Article.Status
KEYS = frozenset({"title", "slug", "category", "tags", "audience", "status", "language", "owner"})
STATUSES = (S.DRAFT, S.IN_REVIEW, S.PUBLISHED, S.ARCHIVED)
LANGUAGE_CODES = tuple(code for code, _name in settings.LANGUAGES)
TITLE_CHARS, SLUG_CHARS, CATEGORY_CHARS, TAG_CHARS = 200, 200, 100, 50

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)^(?:---|\.\.\.)[ \t]*$\n?", re.DOTALL | re.MULTILINE)
_HEADING = re.compile(r"\A#[ \t]+(.+?)[ \t#]*(?:\n|\Z)")


class BadFile(Exception):
    """Why a file cannot be imported; reported with its name, and the file is skipped."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class KbFile:
    """One parsed file. None means the front matter left the key out."""

    name: str  # the path below the imported folder, as reported
    slug: str
    title: str
    body: str
    category: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    audience: str | None = None
    status: str | None = None
    language: str | None = None
    owner: str | None = None


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


# --- reading -----------------------------------------------------------------------------


def markdown_files(root: Path) -> list[tuple[str, Path]]:
    """The *.md files under root (or root itself), by name; hidden folders (.git) are left out."""
    if root.is_file():
        return [(root.name, root)]
    found = []
    for path in root.rglob("*.md"):
        relative = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            found.append((relative.as_posix(), path))
    return sorted(found)


def parse(name: str, raw: bytes) -> KbFile:
    """A file's article, checked; BadFile says what is wrong with it. Needs no database."""
    try:
        text = decode_text(raw)
    except DecodeProblem as problem:
        raise BadFile(_("not UTF-8 text: line %(line)d: %(problem)s") % {"line": problem.line, "problem": problem.message}) from None
    if "\x00" in text:
        raise BadFile(_("contains NUL characters (not a text file?)"))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    meta, body = _front_matter(text)
    unknown = sorted(set(meta) - KEYS)
    if unknown:
        raise BadFile(_("unknown front matter keys: %(keys)s (known: %(known)s)") % {
            "keys": ", ".join(unknown), "known": ", ".join(sorted(KEYS)),
        })
    body = body.strip()
    title = _text(meta, "title", TITLE_CHARS)
    if title is None:
        heading = _HEADING.match(body)
        if heading:  # "# Title" opening the body is the title, not a second one on the page
            title, body = heading.group(1).strip()[:TITLE_CHARS], body[heading.end():].strip()
        elif body:
            title = Path(name).stem.replace("-", " ").replace("_", " ").strip()[:TITLE_CHARS]
    if not title and not body:
        raise BadFile(_("empty: no title and no text"))
    return KbFile(
        name=name, slug=_slug(meta, name), title=title or "", body=body, category=_category_path(meta),
        tags=_tags(meta), audience=_choice(meta, "audience", Audience.values), status=_choice(meta, "status", STATUSES),
        language=_choice(meta, "language", LANGUAGE_CODES), owner=_text(meta, "owner", 150),
    )


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    if not text.startswith("---"):
        return {}, text
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise BadFile(_("the front matter has no closing --- line"))
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = _(" on line %d") % (mark.line + 2) if mark is not None else ""  # + the opening ---
        raise BadFile(_("the front matter is not valid YAML: %(problem)s%(where)s") % {"problem": problem, "where": where}) from None
    except (ValueError, RecursionError):  # e.g. a date that does not exist: 2024-02-30
        raise BadFile(_("the front matter is not valid YAML")) from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise BadFile(_("the front matter is not a mapping of keys to values"))
    if not all(isinstance(key, str) for key in meta):
        raise BadFile(_("every front matter key must be a word such as title"))
    return meta, text[match.end():]


def _text(meta: dict[str, Any], key: str, limit: int) -> str | None:
    """A scalar as text; dates, booleans and lists are refused rather than guessed at."""
    if meta.get(key) is None:
        return None
    value = meta[key]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadFile(_("%(key)s must be text (put it in quotes)") % {"key": key})
    text = str(value).strip()
    if not text:
        return None
    if len(text) > limit:
        raise BadFile(_("%(key)s is longer than %(limit)d characters") % {"key": key, "limit": limit})
    return text


def _choice(meta: dict[str, Any], key: str, choices: Iterable[str]) -> str | None:
    value = _text(meta, key, 50)
    if value is None:
        return None
    allowed = list(choices)
    if value not in allowed:
        raise BadFile(_("%(key)s “%(value)s” is not one of %(allowed)s") % {
            "key": key, "value": value, "allowed": ", ".join(allowed),
        })
    return value


def _slug(meta: dict[str, Any], name: str) -> str:
    given = _text(meta, "slug", SLUG_CHARS)
    if given is not None:
        try:
            validate_unicode_slug(given)
        except ValidationError:
            raise BadFile(_("slug “%s” may only hold letters, digits, - and _") % given) from None
        return given
    made = slugify(Path(name).stem, allow_unicode=True)[:SLUG_CHARS].strip("-_")
    if not made:
        raise BadFile(_("no slug can be made from the file name; give one in the front matter"))
    return made


def _category_path(meta: dict[str, Any]) -> tuple[str, ...] | None:
    value = _text(meta, "category", 1000)
    if value is None:
        return None
    parts = tuple(part.strip() for part in value.split("/"))
    if not all(parts):
        raise BadFile(_("category “%s” has an empty part between slashes") % value)
    if any(len(part) > CATEGORY_CHARS for part in parts):
        raise BadFile(_("a category name is longer than %d characters") % CATEGORY_CHARS)
    return parts


def _tags(meta: dict[str, Any]) -> tuple[str, ...] | None:
    value = meta.get("tags")
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        raise BadFile(_("tags must be a list such as [refund, 退货] or text such as “refund, 退货”"))
    names = []
    for item in value:
        name = _text({"tags": item}, "tags", TAG_CHARS)
        if name is not None:
            names.append(name)
    return tuple(dict.fromkeys(names))


def read_folder(root: Path) -> tuple[list[KbFile], list[tuple[str, str]]]:
    """The good files and the bad ones with their reasons. Files that share a slug are all
    bad: which of them should win is for a person to say."""
    good, bad = [], []
    for name, path in markdown_files(root):
        try:
            good.append(parse(name, path.read_bytes()))
        except BadFile as exc:
            bad.append((name, exc.reason))
        except OSError as exc:
            bad.append((name, _("cannot be read: %s") % exc.strerror))
    by_slug: dict[str, list[str]] = defaultdict(list)
    for kb_file in good:
        by_slug[kb_file.slug].append(kb_file.name)
    for kb_file in [f for f in good if len(by_slug[f.slug]) > 1]:
        others = ", ".join(n for n in by_slug[kb_file.slug] if n != kb_file.name)
        bad.append((kb_file.name, _("slug “%(slug)s” is also the slug of %(others)s") % {"slug": kb_file.slug, "others": others}))
    good = [f for f in good if len(by_slug[f.slug]) == 1]
    return good, sorted(bad)


# --- writing -----------------------------------------------------------------------------


def import_folder(
    root: Path, *, author: AbstractBaseUser | None = None, reviewer: AbstractBaseUser | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Import every good file under root and report on each. Raises DomainError, before
    writing anything, when a file asks for published and no fit reviewer was named."""
    files, bad = read_folder(root)
    publishing = [f.name for f in files if f.status == S.PUBLISHED]
    if publishing:
        check_reviewer(author=author, reviewer=reviewer, files=publishing)
    report = ImportReport(skipped=bad)
    # Each file commits on its own, so a long import keeps what it did; a dry run undoes all.
    with transaction.atomic() if dry_run else nullcontext():
        for kb_file in files:
            try:
                with transaction.atomic():
                    outcome = import_file(kb_file, author=author, reviewer=reviewer)
            except BadFile as exc:
                report.skipped.append((kb_file.name, exc.reason))
            except DomainError as exc:
                report.skipped.append((kb_file.name, str(exc.message)))
            else:
                getattr(report, outcome).append(kb_file.name)
        if dry_run:
            transaction.set_rollback(True)
    report.skipped.sort()
    return report


def check_reviewer(*, author: AbstractBaseUser | None, reviewer: AbstractBaseUser | None, files: list[str]) -> None:
    """Publishing needs a named author and a reviewer other than them who may publish."""
    shown = ", ".join(files[:5]) + (" …" if len(files) > 5 else "")
    if author is None or reviewer is None:
        raise DomainError(
            "reviewer_required",
            _("Some files ask for status published (%s): give --author and --reviewer, two different people.") % shown,
            field="reviewer",
        )
    if reviewer.pk == author.pk:
        raise DomainError("self_review", _("The reviewer must be someone other than the author."), field="reviewer")
    if not reviewer.has_perm(services.PUBLISH_PERMISSION):
        raise DomainError("forbidden", _("%s may not review articles.") % reviewer.get_username(), field="reviewer")


def import_file(kb_file: KbFile, *, author: AbstractBaseUser | None, reviewer: AbstractBaseUser | None) -> str:
    """Make the article match the file: "created", "updated" or "unchanged"."""
    given: dict[str, Any] = {
        name: value
        for name, value in (("audience", kb_file.audience), ("language", kb_file.language))
        if value is not None
    }
    if kb_file.owner is not None:
        given["owner"] = _user(kb_file.owner)
    if kb_file.category is not None:
        given["category"] = category_for(kb_file.category)
    article = Article.objects.filter(slug=kb_file.slug).first()
    if article is None:
        article = services.create_article(
            actor=author, title=kb_file.title, body=kb_file.body, slug=kb_file.slug, tags=kb_file.tags or (), **given,
        )
        _move(article, kb_file.status, author=author, reviewer=reviewer)
        return "created"

    changed = False
    if article.status == S.ARCHIVED:
        if kb_file.status in (None, S.ARCHIVED):
            return "unchanged"  # archived stays archived unless the file names another status
        article = services.restore(article=article, actor=author)
        changed = True
    wanted = {"title": kb_file.title, "body": kb_file.body, **given}
    changes = {name: value for name, value in wanted.items() if getattr(article, name) != value}
    tags = None
    if kb_file.tags is not None and set(kb_file.tags) != set(article.tags.values_list("name", flat=True)):
        tags = kb_file.tags
    if changes or tags is not None:
        article = services.update_article(article=article, actor=author, changes=changes, tags=tags, reason="imported")
        changed = True
    return "updated" if _move(article, kb_file.status, author=author, reviewer=reviewer) or changed else "unchanged"


def _move(article: Article, status: str | None, *, author: AbstractBaseUser | None, reviewer: AbstractBaseUser | None) -> bool:
    """Take the article along its workflow to the file's status; never backwards (a
    published article whose file says draft keeps its live copy). Returns whether it moved."""
    if status == S.ARCHIVED:
        if article.status == S.ARCHIVED:
            return False
        services.archive(article=article, actor=author)
        return True
    moved = False
    if status in (S.IN_REVIEW, S.PUBLISHED) and article.status == S.DRAFT:
        article = services.submit_for_review(article=article, actor=author)
        moved = True
    if status == S.PUBLISHED and article.status == S.IN_REVIEW:
        assert reviewer is not None  # import_folder checked it
        services.publish(article=article, reviewer=reviewer)
        moved = True
    return moved


def _user(username: str) -> AbstractBaseUser:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise BadFile(_("owner “%s” is not a user") % username)
    return user


def category_for(path: tuple[str, ...]) -> KbCategory:
    """The category a path names, each part a slug or a name under the one before (the first
    part may be any category's slug); parts that name nothing are created."""
    parent: KbCategory | None = None
    for depth, part in enumerate(path):
        children = KbCategory.objects.filter(parent=parent)
        found = children.filter(slug=part).first() or children.filter(name=part).first()
        if found is None and depth == 0:
            found = KbCategory.objects.filter(slug=part).first()
        if found is None:
            found = KbCategory.objects.create(name=part, slug=_free_category_slug(part), parent=parent)
        parent = found
    assert parent is not None  # a path has at least one part (_category_path)
    return parent


def _free_category_slug(name: str) -> str:
    base = slugify(name, allow_unicode=True)[: CATEGORY_CHARS - 5].strip("-_") or "category"
    slug, n = base, 1
    while KbCategory.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug
