"""Knowledge-base search on PostgreSQL: quality on a labelled set, then speed at 100,000 articles.

Part 1 loads bench/kb_search/articles.json (231 articles of an online shop for wearables: orders,
payment, returns, shipping, invoices, accounts, bands, watches, earbuds, warranty, points,
coupons; Chinese, English and mixed, with near-duplicates on purpose) into a fresh database
through knowledge.services (create_article, submit_for_review, publish by a second user holding
knowledge.publish_article), so the real indexing runs. Each query of
bench/kb_search/queries.json (94: Chinese, English and mixed, each with the 1-3 slugs that
answer it; "set": core 76, inflected 8 English queries using another form of a word than their answers,
paraphrase 10 that share few words with their answers) is searched as an agent searches
(`search(q, limit=10)`, drafts and internal articles included), and the script prints, over
all queries and for each set:

- P@5: relevant articles among the first five, divided by five, averaged over the queries
  (its ceiling is printed too: a query with one relevant article scores at most 0.2);
- R@5: the share of a query's relevant articles in its first five;
- MRR: the mean of 1 / rank of the first relevant article (0 when none is in the first 10);
- answered in top 5: the share of queries with a relevant article in the first five.

Part 2 (--articles N, default 100,000; 0 skips it) adds N synthetic articles written in Python
from word lists in both languages: the shop's own vocabulary (titles like "智能手环 B417 故障排查",
bodies naming features, problems, services and accessories), so they compete with the labelled
answers. Their words come from knowledge.search.words (segmented, stemmed), they are copied in
bulk, the search vector is set in SQL with setweight(to_tsvector('simple', ...)) as
search.reindex sets it, the table is put in a random physical order (so a search that ranks only
the first matches in table order cannot meet the answers first by luck), the GIN index is
rebuilt, and VACUUM ANALYZE runs. Then P@5/MRR again (the noise must not drown the answers),
and every labelled query goes through search() (segmentation, SQL, snippets: the whole call) R
times after one warm-up round: p50/p95/max in ms, target p95 <= 50 ms.

Usage: .venv/bin/python bench/kb_search.py [--articles 100000] [--runs 5] [--verbose] [--reuse]
    [--database-url URL]
Needs PostgreSQL at --database-url (default $BENCH_POSTGRES_URL or
postgres://postgres@127.0.0.1:5432/helpdesk_kbbench, dropped and made anew; exits non-zero with
fewer timings than runs x queries, or an empty database with --reuse); about 2 minutes in all. --verbose lists each query whose first five miss
a relevant article; --reuse evaluates and times the database a previous run left (after a change
to how search() queries; a change to words() needs a fresh run).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _common  # bench/ is on the path when a benchmark runs
import _postgres

ROOT = _postgres.ROOT
DATA = Path(__file__).resolve().parent / "kb_search"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/helpdesk_kbbench"
URL = DEFAULT_URL  # main() sets both from --database-url (bench/load.py imports this module)
ENV = _postgres.bench_env(URL)
TARGET_P95_MS = 50.0


def labelled() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    articles = json.loads((DATA / "articles.json").read_text(encoding="utf-8"))
    queries = json.loads((DATA / "queries.json").read_text(encoding="utf-8"))
    slugs = {article["slug"] for article in articles}
    for query in queries:
        unknown = set(query["relevant"]) - slugs
        if unknown:
            sys.exit(f"queries.json: {query['query']!r} names unknown slugs {sorted(unknown)}")
    return articles, queries


def load(articles: list[dict[str, Any]]) -> None:
    """Through the services, as an editor and a reviewer would."""
    from django.contrib.auth.models import Permission, User

    from knowledge import services

    writer = User.objects.create_user("kb_writer", is_staff=True)
    reviewer = User.objects.create_user("kb_reviewer", is_staff=True)
    reviewer.user_permissions.add(Permission.objects.get(codename="publish_article", content_type__app_label="knowledge"))
    reviewer = User.objects.get(pk=reviewer.pk)  # fresh permission cache
    for item in articles:
        article = services.create_article(
            actor=writer, title=item["title"], body=item["body"], slug=item["slug"], tags=item.get("tags", ()),
            audience=item.get("audience", "public"), language=item.get("language", "zh-hans"),
        )
        article = services.submit_for_review(article=article, actor=writer)
        services.publish(article=article, reviewer=reviewer)


def evaluate(queries: list[dict[str, Any]], *, verbose: bool) -> dict[str, dict[str, float]]:
    """The figures over all queries and over each set of them (core, inflected, paraphrase)."""
    from knowledge.search import search

    scored: list[tuple[str, float, float, float, float]] = []  # set, precision, ceiling, recall, reciprocal
    for item in queries:
        relevant = set(item["relevant"])
        found = [hit.slug for hit in search(item["query"], limit=10)]
        top = found[:5]
        hits = sum(1 for slug in top if slug in relevant)
        rank = next((i for i, slug in enumerate(found, 1) if slug in relevant), None)
        scored.append((item.get("set", "core"), hits / 5, min(5, len(relevant)) / 5, hits / len(relevant), 1 / rank if rank else 0.0))
        if verbose and hits < min(5, len(relevant)):
            print(f"  miss {item['query']!r}: wanted {sorted(relevant)}, first relevant at {rank}, got {top}")
    figures = {}
    for name in ["all", *dict.fromkeys(row[0] for row in scored)]:
        rows = [row for row in scored if name in ("all", row[0])]
        n = len(rows)
        figures[f"{name} ({n})"] = {
            "P@5": sum(r[1] for r in rows) / n, "P@5 ceiling": sum(r[2] for r in rows) / n, "R@5": sum(r[3] for r in rows) / n,
            "MRR": sum(r[4] for r in rows) / n, "answered in top 5": sum(1 for r in rows if r[4] >= 0.2) / n,
        }
    return figures


def show(figures: dict[str, dict[str, float]], articles: int) -> None:
    print(f"quality over {articles:,} articles:")
    for name, values in figures.items():
        print(f"  {name:<16} " + ", ".join(f"{k} {v:.3f}" for k, v in values.items()))


# --- synthetic articles ------------------------------------------------------------------

ZH_PRODUCTS = ["智能手环", "运动手环", "智能手表", "儿童手表", "蓝牙耳机", "降噪耳机", "体脂秤", "充电器", "表带", "耳塞",
               "充电盒", "运动相机", "平板电脑", "无线充电板", "智能音箱", "路由器", "移动电源", "数据线", "智能跳绳", "血压计"]
ZH_ASPECTS = ["使用说明", "常见问题", "设置方法", "功能介绍", "参数规格", "保养建议", "故障排查", "配件清单", "兼容性说明",
              "固件更新日志", "活动说明", "售后说明", "购买须知", "安装指南", "新品介绍", "使用技巧"]
ZH_FEATURES = ["屏幕亮度", "心率监测", "睡眠记录", "消息通知", "表盘", "闹钟", "久坐提醒", "蓝牙连接", "降噪", "音量",
               "电量显示", "防水模式", "充电提醒", "定位", "步数统计", "血氧检测", "运动模式", "语音助手", "离线支付",
               "勿扰模式", "抬腕亮屏", "天气推送", "来电提醒", "压力监测", "女性健康", "查找手机"]
ZH_PLACES = ["App", "设置菜单", "设备页", "控制中心", "个人中心", "订单详情", "服务页面", "商城首页", "消息中心", "帮助中心"]
ZH_VERBS = ["开启", "关闭", "调整", "查看", "修改", "重置", "同步", "更新", "设置", "管理", "切换", "校准"]
ZH_PROBLEMS = ["连接失败", "无法同步", "充电异常", "屏幕不亮", "声音太小", "数据丢失", "订单异常", "付款失败", "物流延迟",
               "退款未到账", "发票未收到", "积分未到账", "优惠券无法使用", "配对失败", "耗电过快", "无法开机", "提示错误",
               "地址填错", "收到破损", "账户被锁定"]
ZH_ACTIONS = ["重启设备", "联系客服", "更新固件", "重新配对", "检查网络", "查看订单详情", "提交售后申请", "恢复出厂设置",
              "清除缓存", "更换充电线", "重新登录账号", "等待系统处理", "检查蓝牙权限", "拍照上传凭证"]
ZH_SERVICES = ["退货", "换货", "申请保修", "开具发票", "价格保护", "以旧换新", "积分兑换", "延长保修", "上门取件", "修改地址"]
ZH_EXTRA = ["建议在室内温度下使用", "请使用原装配件", "活动期间库存有限", "具体以页面显示为准", "部分地区可能存在差异",
            "老用户同样适用", "新版本改进了稳定性", "数据会加密保存在云端", "配件需单独购买", "此功能仅限部分型号"]

EN_PRODUCTS = ["smart band", "fitness band", "smartwatch", "kids watch", "wireless earbuds", "headphones", "smart scale",
               "charger", "watch strap", "ear tips", "charging case", "action camera", "tablet", "wireless charging pad",
               "smart speaker", "router", "power bank", "cable", "smart jump rope", "blood pressure monitor"]
EN_ASPECTS = ["user guide", "FAQ", "settings", "features", "specifications", "care tips", "troubleshooting",
              "what's in the box", "compatibility", "release notes", "promotion terms", "after-sales notes",
              "buying guide", "installation guide", "product introduction", "tips and tricks"]
EN_FEATURES = ["screen brightness", "heart rate monitoring", "sleep tracking", "message alerts", "watch face", "alarm",
               "sedentary reminder", "Bluetooth connection", "noise cancelling", "volume", "battery indicator",
               "water lock", "charging reminder", "location", "step count", "SpO2 check", "workout modes",
               "voice assistant", "offline payment", "do not disturb", "raise to wake", "weather updates",
               "call alerts", "stress tracking", "cycle tracking", "find my phone"]
EN_PLACES = ["app", "settings menu", "device page", "control centre", "profile page", "order page", "service page",
             "store home page", "message centre", "help centre"]
EN_VERBS = ["turn on", "turn off", "adjust", "check", "change", "reset", "sync", "update", "set up", "manage",
            "switch", "calibrate"]
EN_PROBLEMS = ["pairing fails", "data does not sync", "charging stops", "the screen stays dark", "the sound is too quiet",
               "data goes missing", "an order looks wrong", "a payment fails", "delivery is late", "a refund is late",
               "the invoice has not arrived", "points are missing", "a coupon is rejected", "the connection drops",
               "the battery drains quickly", "the device will not turn on", "an error appears", "the address is wrong",
               "the item arrives damaged", "the account is locked"]
EN_ACTIONS = ["restart the device", "contact support", "update the firmware", "pair it again", "check the network",
              "open the order details", "request after-sales service", "reset it to factory settings",
              "clear the app cache", "try another cable", "sign in again", "wait for the system",
              "check the Bluetooth permissions", "upload a photo as proof"]
EN_SERVICES = ["return it", "exchange it", "claim warranty", "get an invoice", "ask for price protection",
               "trade it in", "redeem points", "extend the warranty", "book a pick-up", "change the address"]
EN_EXTRA = ["Use it at room temperature.", "Use the original accessories.", "Stock is limited during sales.",
            "The product page has the final details.", "Some regions may differ.", "Existing customers qualify too.",
            "The new version improves stability.", "Data is encrypted in the cloud.", "Accessories are sold separately.",
            "Only some models have this feature."]


ZH_ACCESSORIES = ["充电底座", "数据线", "硅胶表带", "耳塞套", "保护壳", "贴膜", "收纳袋", "快充头", "备用表带", "清洁刷"]
EN_ACCESSORIES = ["charging dock", "cable", "silicone strap", "ear tip set", "case", "screen protector", "pouch",
                  "fast charger", "spare strap", "cleaning brush"]
# Sentence patterns, each article drawing three to six: no fixed word ends up in most articles,
# while the shop's vocabulary (订单, 退货, 手环, refund, band…) is spread as in a real base.
ZH_SENTENCES = [
    "{P}的{F}可以在{PL}中{V}。", "如果{PR},请先{A},再{A2}。", "{M} 续航约 {N} 天,重量 {W} 克。",
    "签收后 {D} 天内可以{S}。", "{F}和{F2}需要在{PL}中{V}。", "{E}。", "首次使用{P}前,建议先{A}。",
    "遇到{PR}时,客服会在 {N} 小时内回复。", "本文适用于 {M} 及以后的型号。", "在{PL}点击“{F}”即可{V}。",
    "{P}支持{F}、{F2}和{F3}。", "{S}的申请入口在{PL}。", "旧版本固件偶尔出现{PR}的情况,升级后即可解决。",
    "包装内含{P}、{ACC}和保修卡。", "活动期间购买{P}赠送{ACC}。", "{ACC}需单独购买,{E}。",
]
EN_SENTENCES = [
    "You can {V} the {F} of the {P} from the {PL}.", "If {PR}, {A} and then {A2}.",
    "The {M} lasts about {N} days and weighs {W} g.", "Within {D} days of delivery you can {S}.",
    "The {F} and {F2} are in the {PL}.", "{E}", "Before using the {P} for the first time, {A}.",
    "When {PR}, support replies within {N} hours.", "This applies to the {M} and later models.",
    "Tap {F} in the {PL} to {V} it.", "The {P} supports {F}, {F2} and {F3}.", "To {S}, go to the {PL}.",
    "Older firmware sometimes shows this when {PR}; updating fixes it.",
    "The box holds the {P}, a {ACC} and the warranty card.", "Buy the {P} during the sale and get a free {ACC}.",
    "The {ACC} is sold separately. {E}",
]


def synthetic(n: int, seed: int = 6) -> list[tuple[str, str, str]]:
    """N (slug, title, Markdown body), half Chinese and half English."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        model = f"{rng.choice('ABCDEFGHKMPSTX')}{rng.randint(1, 999)}"
        zh = i % 2 == 0
        product = rng.choice(ZH_PRODUCTS if zh else EN_PRODUCTS)
        lists = (
            (ZH_FEATURES, ZH_PLACES, ZH_VERBS, ZH_PROBLEMS, ZH_ACTIONS, ZH_SERVICES, ZH_EXTRA, ZH_ACCESSORIES)
            if zh else (EN_FEATURES, EN_PLACES, EN_VERBS, EN_PROBLEMS, EN_ACTIONS, EN_SERVICES, EN_EXTRA, EN_ACCESSORIES)
        )
        features, places, verbs, problems, actions, services, extras, accessories = lists
        slots = {
            "P": product, "M": model, "F": rng.choice(features), "F2": rng.choice(features), "F3": rng.choice(features),
            "PL": rng.choice(places), "V": rng.choice(verbs), "PR": rng.choice(problems), "A": rng.choice(actions),
            "A2": rng.choice(actions), "S": rng.choice(services), "E": rng.choice(extras).rstrip("."),
            "ACC": rng.choice(accessories), "N": rng.randint(2, 48), "W": rng.randint(8, 300),
            "D": rng.choice([7, 15, 30, 90]),
        }
        if zh:
            title = f"{product} {model} {rng.choice(ZH_ASPECTS)}"
            sentences = rng.sample(ZH_SENTENCES, rng.randint(3, 6))
        else:
            title = f"{product.capitalize()} {model} {rng.choice(EN_ASPECTS)}"
            sentences = rng.sample(EN_SENTENCES, rng.randint(3, 6))
        body = " ".join(sentence.format(**slots) for sentence in sentences)
        out.append((f"synthetic-{i}", title, body))
    return out


def _segment(chunk: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    from knowledge.rendering import to_text
    from knowledge.search import words

    return [(" ".join(words(title)), " ".join(words(to_text(body)))) for _, title, body in chunk]


def _copy_field(value: Any) -> str:
    """A value in COPY's text format."""
    if value is None:
        return r"\N"
    return str(value).replace("\\", "\\\\").replace("\t", " ").replace("\n", "\\n").replace("\r", " ")


def fill(n: int) -> None:
    from multiprocessing import get_context

    from django.db import connection

    from knowledge import search
    from knowledge.search import words

    started = time.perf_counter()
    rows = synthetic(n)
    words("预热")  # load jieba's dictionary before forking, so each worker has it
    chunks = [rows[i:i + 2000] for i in range(0, len(rows), 2000)]
    connection.close()  # no connection shared with the forked workers
    with get_context("fork").Pool(os.cpu_count() or 2) as pool:
        segmented = [pair for part in pool.map(_segment, chunks) for pair in part]
    print(f"  generated and segmented {n:,} articles  {time.perf_counter() - started:6.1f} s", flush=True)

    started = time.perf_counter()
    rng = random.Random(7)
    buffer = io.StringIO()
    for i, ((slug, title, body), (search_title, search_body)) in enumerate(zip(rows, segmented)):
        roll = rng.random()
        status = "published" if roll < 0.9 else "draft" if roll < 0.95 else "archived"
        live = status == "published"
        fields = [
            slug, title, body, "zh-hans" if i % 2 == 0 else "en", "public" if rng.random() < 0.7 else "internal",
            status, "", title if live else "", body if live else "", "", "2026-06-01 00:00:00+00" if live else None,
            rng.choice([0, 0, 0, 1, 2, 5, 20]), rng.choice([0, 0, 0, 1, 3, 10]), 0, search_title, search_body,
            "2026-01-01 00:00:00+00", "2026-06-01 00:00:00+00",
        ]
        buffer.write("\t".join(_copy_field(field) for field in fields) + "\n")
    columns = ("slug, title, body, language, audience, status, review_note, live_title, live_body, live_html, "
               "published_at, helpful_count, unhelpful_count, usage_count, search_title, search_body, created_at, updated_at")
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS article_search_idx")
        cursor.execute(f"CREATE TEMP TABLE staging AS SELECT {columns} FROM knowledge_article LIMIT 0")
        with cursor.cursor.copy(f"COPY staging ({columns}) FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        # The vector as search.reindex builds it: title A, (no tags) B, body C, 'simple' config.
        cursor.execute(
            f"INSERT INTO knowledge_article ({columns}, search_vector) SELECT {columns}, "
            "setweight(to_tsvector('simple', search_title), 'A') || setweight(to_tsvector('simple', search_body), 'C') "
            "FROM staging"
        )
        cursor.execute("DROP TABLE staging")
        # Rows in a random physical order, the labelled ones among them: a search that reads a
        # capped number of matches in table order must not find the answers first by luck.
        cursor.execute("CREATE INDEX kb_bench_shuffle ON knowledge_article (md5(slug))")
        cursor.execute("CLUSTER knowledge_article USING kb_bench_shuffle")
        cursor.execute("DROP INDEX kb_bench_shuffle")
        cursor.execute("CREATE INDEX article_search_idx ON knowledge_article USING gin (search_vector)")
    print(f"  copied, shuffled, vectors set, GIN index  {time.perf_counter() - started:6.1f} s", flush=True)
    started = time.perf_counter()
    connection.ensure_connection()
    connection.connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE knowledge_article")
    search.forget_statistics()  # as a web process would within search.STATISTICS_SECONDS
    print(f"  VACUUM ANALYZE                            {time.perf_counter() - started:6.1f} s", flush=True)


def timing(queries: list[dict[str, Any]], runs: int) -> list[tuple[float, str]]:
    from knowledge.search import search

    for item in queries:  # warm-up: caches, prepared plans
        search(item["query"], limit=10)
    samples = []
    for _ in range(runs):
        for item in queries:
            started = time.perf_counter()
            search(item["query"], limit=10)
            samples.append(((time.perf_counter() - started) * 1000, item["query"]))
    return samples


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000, help="synthetic articles to add (0: quality only)")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds over the labelled queries")
    parser.add_argument("--verbose", action="store_true", help="list the queries whose top five miss an answer")
    parser.add_argument("--reuse", action="store_true", help="evaluate and time the database a previous run filled")
    _common.add_target_options(parser, database=DEFAULT_URL)
    args = parser.parse_args()
    if args.articles < 0 or args.runs < 1:
        sys.exit("--articles must be >= 0 and --runs >= 1")
    global URL, ENV
    URL, ENV = args.database_url, _postgres.bench_env(args.database_url)
    with _common.machine():
        run(args)


def run(args: argparse.Namespace) -> None:
    articles, queries = labelled()
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    if args.reuse:
        import django

        django.setup()
        from knowledge.models import Article

        total = Article.objects.count()
        _common.require(total, 1, "articles in the database a previous run filled")
        show(evaluate(queries, verbose=args.verbose), total)
        report(queries, args.runs, total)
        return
    started = time.perf_counter()
    _postgres.fresh_database(URL, ENV)
    print(f"fresh database and migrate: {time.perf_counter() - started:.1f} s")
    import django

    django.setup()
    started = time.perf_counter()
    load(articles)
    print(f"{len(articles)} labelled articles created, reviewed and published through the services: "
          f"{time.perf_counter() - started:.1f} s")
    show(evaluate(queries, verbose=args.verbose), len(articles))
    if not args.articles:
        return
    print(f"fill of {args.articles:,} synthetic articles:")
    fill(args.articles)
    total = len(articles) + args.articles
    show(evaluate(queries, verbose=args.verbose), total)
    report(queries, args.runs, total)


def report(queries: list[dict[str, Any]], runs: int, total: int) -> None:
    samples = timing(queries, runs)
    ms = [s for s, _ in _common.measured(samples, runs * len(queries), "search timings")]
    p95 = percentile(ms, 95)
    print(f"search() over {total:,} articles, {len(ms)} calls ({runs} rounds of {len(queries)} queries): "
          f"p50 {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, max {max(ms):.1f} ms "
          f"({'met' if p95 <= TARGET_P95_MS else 'NOT met'}: target p95 <= {TARGET_P95_MS:.0f} ms)")
    slowest: dict[str, float] = {}
    for value, query in samples:
        slowest[query] = max(value, slowest.get(query, 0.0))
    print("slowest queries: " + ", ".join(f"{q!r} {v:.0f} ms" for q, v in sorted(slowest.items(), key=lambda x: -x[1])[:5]))


if __name__ == "__main__":
    main()
