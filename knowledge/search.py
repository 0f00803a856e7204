"""Knowledge-base search in Chinese, English and both mixed.

Chinese has no spaces between words, so text is segmented in Python (jieba, search mode: 手环连接
失败 → 手环 / 连接 / 失败), English words are stemmed (Snowball: refunds, refunded → refund), and
the words are stored space-separated (`search_title`, `search_body`). PostgreSQL indexes them as
a weighted tsvector with the `simple` configuration (title A, tags B, body C) behind a GIN index;
SQLite matches the same words with LIKE.

Articles are found by coordination level: those with every word of the query, then those with all
but one, and so on down to a floor (both of two words, half of more; lower only when nothing
reaches it). The words of a query pick out few articles together, so each level stays small in a
large base, where the plain OR of common words (手环 | 消息 | 提醒) reads a quarter of it and costs
hundreds of milliseconds to rank. On PostgreSQL a level first asks only for the groups of words
that ANALYZE's statistics say are rare together, and ranks at most MAX_RANKED matches. Single
characters (开, 没, the c of USB-C: what jieba leaves of words it does not know) add to the rank
but never exclude an article.

The score: each word's weight where it is found (title 1.0, tags 0.5, body 0.25; on PostgreSQL
ts_rank's), averaged over the query's words, times 1.5 when published, between 0.75 and 1.25 for
readers' votes, and between 0.5 and 1 for the share of the query's words the article has.
"""

from __future__ import annotations

import functools
import html
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import (
    Case,
    F,
    FloatField,
    IntegerField,
    Max,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Concat

from .models import Article, Audience
from .rendering import to_text

# A version or decimal number stays whole (蓝牙 5.3, 1.74 英寸): its parts alone match anything.
_WORD = re.compile(r"[0-9]+(?:\.[0-9]+)+|[0-9a-z\u3400-\u9fff]+")
_LATIN = re.compile(r"^[0-9a-z]+$")
# Function words and question words: they say how something is asked, not what about.
STOPWORDS = frozenset(
    "的 了 吗 呢 吧 啊 呀 哦 嘛 是 在 和 与 及 或 我 你 您 他 她 它 我们 你们 他们 请问 请 怎么 怎么办 怎么样 怎样 如何 "
    "什么 为什么 什么样 时候 多久 多少 哪 哪里 哪些 哪个 是否 能否 能不能 可不可以 可以 能 一下 这个 那个 这 那 有 没有 "
    "要 想 会 就 都 也 还 但 但是 后 之后 谁 得 着 过 被 把 让 给 不了 "
    "a an the to of for and or in on at is are was were be been am do does did done how what why when where which "
    "who whom can could will would should shall may might must i my me mine you your it its this that these those "
    "with from by as but if so than then there their they them we our us he she his her not no yes any all some "
    "about into out just also very too has have had get got t s d ll m re ve don doesn didn isn aren wasn won "
    "can cannot".split()
)
SNIPPET_CHARS = 160
WEAK_IN_TITLE = 0.3  # a single character of the query in the title: about half a title word
TITLE_RANK = 0.85  # ts_rank of a word in the title: 0.61 once, 0.8 twice, with the body's on top
MAX_WORDS = 16  # of a long query (an agent-assist ticket), the first ones
MAX_TERMS = 6  # searched for: at most C(6, 3) = 20 groups in a level's query
COMMON_ROWS = 3000  # a group of words expected in more articles is searched for only as a last resort
MAX_RANKED = 5000  # matches ranked on one level, at most: about 20 ms of PostgreSQL's time
STATISTICS_SECONDS = 600
# ts_rank weights in PostgreSQL's order: D (unused), C body, B tags, A title.
WEIGHTS = [0.1, 0.25, 0.5, 1.0]
_jieba_lock = threading.Lock()
_tokenizer = None


def _jieba() -> Any:
    global _tokenizer
    if _tokenizer is None:
        with _jieba_lock:
            if _tokenizer is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()  # loads the dictionary once per process (~0.6 s)
                _tokenizer = tokenizer
    return _tokenizer


def _tokens(text: str) -> list[str]:
    found = []
    for token in _jieba().cut_for_search((text or "").lower()):
        for word in _WORD.findall(token):
            if word not in STOPWORDS:
                found.append(word)
    return found


_stemmer_lock = threading.Lock()
_stemmer: Any = None


@functools.lru_cache(maxsize=100_000)
def _stem(word: str) -> str:
    """An English word's Snowball stem (refunds, refunded → refund; policy, policies → polici);
    other words as they are. Cached: the stemmer is pure Python, and not thread-safe."""
    global _stemmer
    if not word.isascii() or not word.isalpha():
        return word
    with _stemmer_lock:
        if _stemmer is None:
            import snowballstemmer

            _stemmer = snowballstemmer.stemmer("english")
        return _stemmer.stemWord(word)


def words(text: str) -> list[str]:
    """The searchable words of a text: lower-cased, segmented, stemmed, without punctuation or
    stopwords."""
    return [_stem(word) for word in _tokens(text)]


def normalize(query: str) -> str:
    """The query as the gap report groups it: its words (as typed, not stemmed), in order, once each."""
    return " ".join(dict.fromkeys(_tokens(query)))[:200]


# --- indexing ----------------------------------------------------------------------------


def reindex(article_ids: Iterable[int] | None = None, *, batch: int = 500) -> int:
    """Recompute the search words (and vector) of these articles, or of all; returns how many.
    A live article is indexed as readers see it, so an edit waiting for review changes nothing."""
    queryset = Article.objects.order_by("pk")
    if article_ids is not None:
        queryset = queryset.filter(pk__in=list(article_ids))
    done, last = 0, 0
    while True:
        rows = list(queryset.filter(pk__gt=last).prefetch_related("tags")[:batch])
        if not rows:
            return done
        vectors = []
        for article in rows:
            live = article.is_live
            title = " ".join(words(article.live_title if live else article.title))
            tags = " ".join(words(" ".join(tag.name for tag in article.tags.all())))
            body = " ".join(words(to_text(article.live_body if live else article.body)))
            article.search_title, article.search_body = title, f"{tags} {body}".strip()
            vectors.append((article.pk, title, tags, body))
        Article.objects.bulk_update(rows, ["search_title", "search_body"])
        if connection.vendor == "postgresql":
            for pk, title, tags, body in vectors:
                Article.objects.filter(pk=pk).update(search_vector=_vector(title, tags, body))
        done += len(rows)
        last = rows[-1].pk


def _vector(title: str, tags: str, body: str) -> SearchVector:
    return (
        SearchVector(Value(title), config="simple", weight="A")
        + SearchVector(Value(tags), config="simple", weight="B")
        + SearchVector(Value(body), config="simple", weight="C")
    )


# --- searching ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    article_id: int
    slug: str
    title: str
    snippet: str  # HTML: the text escaped, the query's words in <mark>
    score: float  # higher is better; comparable within one search
    status: str
    audience: str


def visible(*, public_only: bool, live_only: bool) -> QuerySet[Article]:
    """Public callers see live public articles; agents every article not archived (or only
    the live ones, for suggestions they can put in a reply)."""
    articles = Article.objects.exclude(status=Article.Status.ARCHIVED)
    if public_only:
        articles = articles.filter(live_audience=Audience.PUBLIC)  # the reviewed audience
    if public_only or live_only:
        articles = articles.filter(published_at__isnull=False)
    return articles


def _weak(term: str) -> bool:
    return len(term) == 1 and not term.isdigit()


def query_terms(query: str) -> tuple[list[str], list[str]]:
    """The words an article must have (coordination levels count these; the first MAX_WORDS) and
    the single letters and characters that only rank."""
    terms = list(dict.fromkeys(words(query)))
    strong = [term for term in terms if not _weak(term)]
    weak = [term for term in terms if _weak(term)]
    if not strong:
        strong, weak = weak, []
    return strong[:MAX_WORDS], weak[:MAX_TERMS]


def floor_level(words_in_query: int) -> int:
    """The fewest of the query's words an article may have once some article has more: both of
    two, half of more. (Below it only when nothing reaches it.)"""
    return words_in_query if words_in_query <= 2 else math.ceil(words_in_query / 2)


def coverage(level: int, words_in_query: int) -> float:
    """The score's factor for having `level` of the query's words: 1 for all, 0.5 for none. Mild,
    so three of four words in the title still beat all four in passing in the body."""
    return 0.5 + 0.5 * level / words_in_query


def search(query: str, *, public_only: bool = False, live_only: bool = False, limit: int = 10) -> list[Hit]:
    """The best articles for the query, best first."""
    if limit < 1:
        return []
    strong, weak = query_terms(query)
    postgres = connection.vendor == "postgresql"
    if postgres:
        strong = _present(strong)  # the words no article has would only make the levels deeper
    strong = strong[:MAX_TERMS]
    if not strong:
        return []
    articles = visible(public_only=public_only, live_only=live_only)
    if postgres:
        rows = _postgres(articles, strong, weak, limit)
    else:
        rows = _sqlite(articles, strong, weak, limit)
    marker = _marker(strong + weak)
    return [
        Hit(
            article_id=row.pk,
            slug=row.slug,
            title=row.shown_title,
            snippet=snippet(row.live_body if row.is_live else row.body, strong + weak, marker=marker),
            score=round(float(row.final), 4),
            status=row.status,
            audience=row.shown_audience,
        )
        for row in rows
    ]


SHOWN_FIELDS = ("pk", "slug", "title", "body", "live_title", "live_body", "published_at", "status", "audience", "live_audience")
PUBLISHED_BOOST = 1.5
VOTES_BOOST = 0.25  # all votes helpful: 1.25; all unhelpful: 0.75


def _relevance(strong: list[str], weak: list[str], *, title: Any, body: Any) -> Any:
    """Each word's weight where it is found (title, tags, body; a single character in the title),
    averaged over the query's words."""
    total: Any = Value(0.0)
    for term in strong:
        total = total + Case(When(title(term), then=Value(WEIGHTS[3])), When(body(term), then=Value(WEIGHTS[1])),
                             default=Value(0.0), output_field=FloatField())
    return (total + _weak_bonus(weak)) / Value(float(len(strong) + len(weak)))


def _boosted(ranked: QuerySet[Article]) -> QuerySet[Article]:
    """Relevance times 1.5 when published, and between 0.75 (all votes unhelpful) and 1.25 (all
    helpful): votes order articles that answer about equally well, they do not lift a weaker
    match over a better one. Four phantom votes keep one early vote from counting for much."""
    votes = Cast(F("helpful_count") + F("unhelpful_count"), FloatField()) + Value(4.0)
    net = Cast(F("helpful_count") - F("unhelpful_count"), FloatField())
    return ranked.annotate(
        score=F("relevance")
        * Case(When(published_at__isnull=False, then=Value(PUBLISHED_BOOST)), default=Value(1.0),  # live, even with an edit pending
               output_field=FloatField())
        * (Value(1.0) + Value(VOTES_BOOST) * net / votes)
    ).only(*SHOWN_FIELDS)


def _tsquery(text: str) -> SearchQuery:
    # Words are [0-9a-z], numbers like 5.3 or CJK only (words()): they need no quoting. No prefix
    # matching (refund:*): stems find refunds and refunded, and a short prefix in the GIN index
    # reads every word it starts (pro:* is product, profile, promotion…), 10 ms and more.
    return SearchQuery(text, search_type="raw", config="simple")


def _weak_bonus(weak: list[str]) -> Any:
    """Single characters are looked for in the segmented title as text: 开 and 机 of 开不了机 are
    in 开机 though jieba never made them words."""
    bonus: Any = Value(0.0)
    for char in weak:
        if _LATIN.match(char):  # a letter would be found in half the titles
            continue
        bonus = bonus + Case(
            When(search_title__contains=char, then=Value(WEAK_IN_TITLE)), default=Value(0.0), output_field=FloatField(),
        )
    return bonus


def _postgres(articles: QuerySet[Article], strong: list[str], weak: list[str], limit: int) -> list[Article]:
    """Level by level from all the words down to the floor, one ranked query a level. A level asks
    only for the groups of words that ANALYZE's statistics say few articles have together: 签收
    or order alone pick out nothing, and matching them would read thousands of articles to rank
    them. When no such group finds anything, the levels run again with every group."""
    # ts_rank averages over the query's words: times their number, it adds up.
    rank = SearchRank(F("search_vector"), _tsquery(" | ".join(strong)), weights=WEIGHTS)
    relevance = (rank * Value(float(len(strong))) + _weak_bonus(weak)) / Value(float(len(strong) + len(weak)))
    articles = articles.annotate(relevance=relevance)
    total, shares = _statistics()
    share = {term: shares.get(term, 0.0) for term in strong}

    def expected(group: tuple[str, ...]) -> float:
        return total * math.prod(share[term] for term in group)

    def cheap(groups: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        """The groups most likely to be rare, as many as fit in COMMON_ROWS expected articles."""
        kept, rows = [], 0.0
        for group in sorted(groups, key=expected):
            rows += expected(group)
            if rows > COMMON_ROWS:
                break
            kept.append(group)
        return kept

    # The most an article on a level can score (every word in the title, published and all votes
    # helpful): once the page's last article beats it, the levels below cannot change the page.
    def best_possible(level: int) -> float:
        most = (level * TITLE_RANK + WEAK_IN_TITLE * len(weak)) / (len(strong) + len(weak))
        return most * PUBLISHED_BOOST * (1 + VOTES_BOOST) * coverage(level, len(strong))

    asked: set[tuple[str, ...]] = set()
    rows = _levels(articles, strong, limit, choose=cheap, best_possible=best_possible, asked=asked)
    if rows:
        return rows
    # Nothing among the rare groups: the common ones too (the groups asked found nothing).
    return _levels(articles, strong, limit, choose=lambda groups: [g for g in groups if g not in asked],
                   best_possible=best_possible, asked=set())


def _levels(
    articles: QuerySet[Article], required: list[str], limit: int, *, choose: Any, best_possible: Any,
    asked: set[tuple[str, ...]],
) -> list[Article]:
    floor = floor_level(len(required))
    found: list[Article] = []
    above: list[str] = []
    for level in range(len(required), 0, -1):
        if found and level < floor:
            break
        if len(found) >= limit and found[limit - 1].final >= best_possible(level):
            break
        groups = choose(list(combinations(required, level)))
        if not groups:
            continue
        asked.update(groups)
        query = " | ".join("(" + " & ".join(group) + ")" for group in groups)
        matching = articles.filter(search_vector=_tsquery(query))
        if above:  # found on the levels above
            matching = matching.exclude(search_vector=_tsquery(" | ".join(f"({q})" for q in above)))
        for row in _best(matching, limit):
            row.final = row.score * coverage(level, len(required))
            found.append(row)
        found.sort(key=lambda row: (-row.final, -row.pk))
        del found[limit:]
        above.append(query)
    return found


def _best(matching: QuerySet[Article], limit: int) -> list[Article]:
    """The best `limit` of the first MAX_RANKED matches the index gives (in table order): past
    that many, the query's words pick nothing out, and ranking them all would cost more than
    the whole search may take."""
    sql, params = _boosted(matching).order_by()[:MAX_RANKED].query.sql_with_params()
    return list(Article.objects.raw(
        f"SELECT * FROM ({sql}) AS candidates ORDER BY score DESC, id DESC LIMIT %s", [*params, limit],
    ))


def _present(terms: list[str]) -> list[str]:
    """The terms some article (any, archived too) has, in their order: one query, a GIN look-up
    each. A zero-result search ends here."""
    if not terms:
        return []
    table = connection.ops.quote_name(Article._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT term FROM unnest(%s::text[]) WITH ORDINALITY AS t(term, n) WHERE EXISTS "
            f"(SELECT 1 FROM {table} WHERE search_vector @@ to_tsquery('simple', term)) ORDER BY n",
            [terms],
        )
        return [term for (term,) in cursor.fetchall()]


_statistics_lock = threading.Lock()
_cached: dict[str, Any] = {"until": 0.0, "rows": 0.0, "shares": {}}


def forget_statistics() -> None:
    """Read the word statistics again at the next search (after a bulk load and ANALYZE)."""
    _cached["until"] = 0.0


def _statistics() -> tuple[float, dict[str, float]]:
    """The number of articles and the share of them that has each common word, from what
    ANALYZE keeps of the search vector (a word not listed is rarer than every listed one).
    Read once in STATISTICS_SECONDS per process: one cheap catalogue query."""
    now = time.monotonic()
    if now >= _cached["until"]:
        table = Article._meta.db_table
        with _statistics_lock, connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.reltuples, s.most_common_elems::text::text[], s.most_common_elem_freqs FROM pg_class c "
                "LEFT JOIN pg_stats s ON s.schemaname = current_schema() AND s.tablename = %s AND s.attname = %s "
                "WHERE c.oid = to_regclass(%s)",
                [table, "search_vector", table],
            )
            row = cursor.fetchone() or (0.0, None, None)
        rows, lexemes, shares = row
        _cached.update(
            until=now + STATISTICS_SECONDS, rows=max(float(rows or 0), 0.0), shares=dict(zip(lexemes or [], shares or [])),
        )
    return _cached["rows"], _cached["shares"]


def _sqlite(articles: QuerySet[Article], strong: list[str], weak: list[str], limit: int) -> list[Article]:
    """The same levels and weights with LIKE on the segmented text (tags count as body): a scan,
    fine for the small bases SQLite serves."""
    def has(field: str) -> Any:
        return lambda term: Q(**{f"{field}__contains": f" {term} "})

    title, body = has("padded_title"), has("padded_body")
    matched: Any = Value(0)
    for term in strong:
        matched = matched + Case(When(title(term) | body(term), then=Value(1)), default=Value(0), output_field=IntegerField())
    ranked = articles.annotate(
        # Whole words only: " 5 " is not in " 5.3 ", nor " pay " in " payment ".
        padded_title=Concat(Value(" "), "search_title", Value(" "), output_field=TextField()),
        padded_body=Concat(Value(" "), "search_body", Value(" "), output_field=TextField()),
    ).annotate(level=matched).filter(level__gte=1)
    best = ranked.aggregate(best=Max("level"))["best"]
    if not best:
        return []
    ranked = ranked.filter(level__gte=min(best, floor_level(len(strong))))
    ranked = _boosted(ranked.annotate(relevance=_relevance(strong, weak, title=title, body=body)))
    final = F("score") * (Value(0.5) + Value(0.5 / len(strong)) * Cast("level", FloatField()))
    return list(ranked.annotate(final=final).order_by("-final", "-pk")[:limit])


# --- snippets ----------------------------------------------------------------------------


def _marker(terms: list[str]) -> tuple[re.Pattern[str], Callable[[str], bool]]:
    """What to mark: Chinese words (and numbers) wherever they are; English words whose stem is
    one of the query's."""
    literal = sorted({term for term in terms if not _LATIN.match(term)}, key=len, reverse=True)
    stems = {term for term in terms if _LATIN.match(term)}
    parts = [re.escape(term) for term in literal] + ([r"[0-9a-z]+"] if stems else [])
    pattern = re.compile("|".join(parts) or r"(?!)", re.IGNORECASE)

    def wanted(found: str) -> bool:
        lowered = found.lower()
        return not _LATIN.match(lowered) or _stem(lowered) in stems

    return pattern, wanted


def snippet(markdown: str, terms: list[str], size: int = SNIPPET_CHARS, *, marker: Any = None) -> str:
    """About `size` characters of the text around the first of the query's words (as words()
    gives them), escaped, with the query's words in <mark>."""
    text = to_text(markdown)
    pattern, wanted = marker or _marker(terms)
    first = next((match for match in pattern.finditer(text) if wanted(match.group(0))), None)
    start = max(0, first.start() - size // 4) if first else 0
    piece = text[start:start + size]
    out, at = [], 0
    for match in pattern.finditer(piece):  # escape around the matches, not across them
        if not wanted(match.group(0)):
            continue
        out.append(html.escape(piece[at:match.start()]))
        out.append(f"<mark>{html.escape(match.group(0))}</mark>")
        at = match.end()
    out.append(html.escape(piece[at:]))
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + size < len(text) else ""
    return prefix + "".join(out) + suffix
