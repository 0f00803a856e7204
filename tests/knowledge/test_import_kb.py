"""manage.py import_kb: Markdown files with YAML front matter become reviewed articles by slug."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from helpdesk.models import Tag
from knowledge import services
from knowledge.imports import BadFile, parse
from knowledge.models import Article, KbCategory

pytestmark = pytest.mark.django_db

REFUND = """---
title: 退货流程
category: 售后/退货
tags: [退货, refund]
audience: public
---
签收后 **7 天内**可以申请退货。
"""
PAIRING = "# Band pairing\n\nHold the button for five seconds.\n"
REVIEW = """---
title: 发票怎么开
status: in_review
tags: "发票, invoice"
language: zh-hans
owner: lena
---
在订单页申请电子发票。
"""


def write(root: Path, name: str, text: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def run(root: Path, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    with translation.override("en"):
        call_command("import_kb", str(root), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def failing(root: Path, *args: str) -> tuple[str, str, str]:
    out, err = StringIO(), StringIO()
    with translation.override("en"), pytest.raises(CommandError) as failed:
        call_command("import_kb", str(root), *args, stdout=out, stderr=err)
    return str(failed.value), out.getvalue(), err.getvalue()


@pytest.fixture
def faq(tmp_path: Path) -> Path:
    write(tmp_path, "after-sales/refund.md", REFUND)
    write(tmp_path, "devices/band/band-pairing.md", PAIRING)
    write(tmp_path, "invoice.md", REVIEW)
    write(tmp_path, ".git/ignored.md", "# not an article")
    write(tmp_path, "notes.txt", "not Markdown")
    return tmp_path


def test_it_imports_a_folder_creating_articles_categories_and_tags(faq, alice, lena):
    out, err = run(faq, "--author", "alice")
    assert out.strip() == "3 created, 0 updated, 0 unchanged, 0 skipped." and err == ""

    refund = Article.objects.get(slug="refund")
    assert refund.title == "退货流程" and refund.body == "签收后 **7 天内**可以申请退货。"
    assert refund.audience == "public" and refund.status == Article.Status.DRAFT
    assert refund.created_by == alice.user and refund.owner == alice.user
    assert refund.category.name == "退货" and refund.category.parent.name == "售后"
    assert sorted(refund.tags.values_list("name", flat=True)) == ["refund", "退货"]

    pairing = Article.objects.get(slug="band-pairing")  # the file name, as no front matter names one
    assert pairing.title == "Band pairing" and pairing.body == "Hold the button for five seconds."
    assert pairing.audience == "internal" and pairing.category is None

    invoice = Article.objects.get(slug="invoice")
    assert invoice.status == Article.Status.IN_REVIEW and invoice.submitted_by == alice.user
    assert invoice.owner == lena.user
    assert set(Tag.objects.filter(articles=invoice).values_list("name", flat=True)) == {"发票", "invoice"}
    assert Article.objects.count() == 3 and KbCategory.objects.count() == 2


def test_running_the_same_import_again_changes_nothing(faq, alice, lena):
    run(faq, "--author", "alice")
    before = {a.slug: (a.updated_at, a.history.count(), a.status) for a in Article.objects.all()}
    out, _err = run(faq, "--author", "alice")
    assert out.strip() == "0 created, 0 updated, 3 unchanged, 0 skipped."
    assert {a.slug: (a.updated_at, a.history.count(), a.status) for a in Article.objects.all()} == before
    assert KbCategory.objects.count() == 2


def test_a_changed_file_updates_its_article_and_keys_it_leaves_out_keep_their_value(faq, alice, lena, tom):
    run(faq, "--author", "alice")
    refund = Article.objects.get(slug="refund")
    services.update_article(article=refund, actor=alice.user, changes={"owner": tom})
    write(faq, "after-sales/refund.md", REFUND.replace("7 天内", "15 天内").replace("tags: [退货, refund]\n", ""))
    out, _err = run(faq, "--author", "alice")
    assert out.strip() == "0 created, 1 updated, 2 unchanged, 0 skipped."
    refund.refresh_from_db()
    assert "15 天内" in refund.body and refund.owner == tom
    assert sorted(refund.tags.values_list("name", flat=True)) == ["refund", "退货"]


def test_an_article_made_in_the_admin_is_matched_by_slug_and_its_category_by_slug(tmp_path, alice):
    product = KbCategory.objects.create(name="产品", slug="product")
    band = KbCategory.objects.create(name="手环", slug="band", parent=product)
    services.create_article(actor=alice.user, title="旧标题", body="旧内容", slug="pairing")
    write(tmp_path, "pairing.md", "---\ntitle: 手环配对\ncategory: band\n---\n新内容\n")
    out, _err = run(tmp_path, "--author", "alice")
    assert out.strip() == "0 created, 1 updated, 0 unchanged, 0 skipped."
    article = Article.objects.get(slug="pairing")
    assert (article.title, article.body, article.category) == ("手环配对", "新内容", band)
    assert KbCategory.objects.count() == 2


def test_a_nested_category_path_finds_existing_nodes_by_name_or_slug(tmp_path, alice):
    product = KbCategory.objects.create(name="产品", slug="product")
    write(tmp_path, "a.md", "---\ntitle: A\ncategory: product/手环/连接\n---\nx\n")
    write(tmp_path, "b.md", "---\ntitle: B\ncategory: 产品 / 手环\n---\ny\n")
    run(tmp_path)
    a, b = Article.objects.get(slug="a"), Article.objects.get(slug="b")
    assert a.category.name == "连接" and a.category.parent == b.category and b.category.parent == product
    assert KbCategory.objects.count() == 3


def test_bad_files_are_reported_by_name_and_skipped_and_the_command_fails(tmp_path, alice):
    write(tmp_path, "good.md", REFUND)
    bad = {
        "bad-yaml.md": ("---\ntitle: [unclosed\n---\nbody\n", "not valid YAML"),
        "list.md": ("---\n- a\n- b\n---\nbody\n", "not a mapping"),
        "unknown-key.md": ("---\ntitle: x\ncolour: red\n---\nbody\n", "unknown front matter keys: colour"),
        "audience.md": ("---\naudience: everyone\n---\nbody\n", "audience “everyone” is not one of internal, public"),
        "status.md": ("---\nstatus: live\n---\nbody\n", "status “live” is not one of"),
        "empty.md": ("---\n---\n\n", "no title and no text"),
        "latin1.md": ("---\ntitle: café\n---\n".encode("latin-1"), "not UTF-8 text: line 2: bytes e9 (byte 11 of the line)"),
        "unclosed.md": ("---\ntitle: x\nbody without an end\n", "no closing ---"),
        "owner.md": ("---\nowner: ghost\n---\nbody\n", "owner “ghost” is not a user"),
        "date-title.md": ("---\ntitle: 2024-05-01\n---\nbody\n", "title must be text"),
        "dup-one.md": ("---\nslug: same\n---\none\n", "also the slug of dup-two.md"),
        "dup-two.md": ("---\nslug: same\n---\ntwo\n", "also the slug of dup-one.md"),
        "bad-slug.md": ("---\nslug: not a slug!\n---\nbody\n", "slug “not a slug!”"),
    }
    for name, (text, _reason) in bad.items():
        write(tmp_path, name, text)

    message, out, err = failing(tmp_path, "--author", "alice")

    assert message == f"{len(bad)} file(s) skipped, for the reasons above."
    assert out.strip() == f"1 created, 0 updated, 0 unchanged, {len(bad)} skipped."
    lines = dict(line.split(": ", 1) for line in err.strip().splitlines())
    assert set(lines) == set(bad)
    for name, (_text, reason) in bad.items():
        assert reason in lines[name], (name, lines[name])
    assert list(Article.objects.values_list("slug", flat=True)) == ["good"]


def test_publishing_needs_an_author_and_a_reviewer_who_may_publish(faq, alice, lena, bob):
    write(faq, "live.md", "---\ntitle: 上线文章\nstatus: published\naudience: public\n---\n正文\n")
    message, _out, _err = failing(faq)
    assert "live.md" in message and "--reviewer" in message
    assert failing(faq, "--author", "alice", "--reviewer", "alice")[0] == "The reviewer must be someone other than the author."
    assert failing(faq, "--author", "alice", "--reviewer", "bob")[0] == "bob may not review articles."
    assert Article.objects.count() == 0  # refused before anything was written

    out, _err = run(faq, "--author", "alice", "--reviewer", "lena")
    assert out.strip() == "4 created, 0 updated, 0 unchanged, 0 skipped."
    live = Article.objects.get(slug="live")
    assert live.status == Article.Status.PUBLISHED and live.reviewed_by == lena.user and live.edited_by == alice.user
    assert live.live_title == "上线文章" and "正文" in live.live_html


def test_a_published_article_whose_file_changed_is_published_again_by_the_reviewer(tmp_path, alice, lena):
    write(tmp_path, "live.md", "---\ntitle: 上线文章\nstatus: published\n---\n第一版\n")
    run(tmp_path, "--author", "alice", "--reviewer", "lena")
    write(tmp_path, "live.md", "---\ntitle: 上线文章\nstatus: published\n---\n第二版\n")
    out, _err = run(tmp_path, "--author", "alice", "--reviewer", "lena")
    assert out.strip() == "0 created, 1 updated, 0 unchanged, 0 skipped."
    live = Article.objects.get(slug="live")
    assert live.status == Article.Status.PUBLISHED and "第二版" in live.live_html


def test_a_changed_file_without_a_status_leaves_the_live_copy_for_review(tmp_path, alice, lena):
    write(tmp_path, "live.md", "---\ntitle: 上线文章\nstatus: published\n---\n第一版\n")
    run(tmp_path, "--author", "alice", "--reviewer", "lena")
    write(tmp_path, "live.md", "---\ntitle: 上线文章\n---\n第二版\n")
    run(tmp_path, "--author", "alice")
    live = Article.objects.get(slug="live")
    assert live.status == Article.Status.DRAFT and live.body == "第二版"
    assert "第一版" in live.live_html and live.is_live


def test_archived_files_archive_their_article_and_stay_archived(tmp_path, alice):
    services.create_article(actor=alice.user, title="旧政策", body="旧", slug="old")
    write(tmp_path, "old.md", "---\ntitle: 旧政策\nstatus: archived\n---\n旧\n")
    assert run(tmp_path, "--author", "alice")[0].strip() == "0 created, 1 updated, 0 unchanged, 0 skipped."
    assert Article.objects.get(slug="old").status == Article.Status.ARCHIVED
    assert run(tmp_path, "--author", "alice")[0].strip() == "0 created, 0 updated, 1 unchanged, 0 skipped."


def test_a_file_naming_a_status_brings_an_archived_article_back(tmp_path, alice):
    article = services.create_article(actor=alice.user, title="旧政策", body="旧", slug="old")
    services.archive(article=article, actor=alice.user)
    write(tmp_path, "old.md", "---\ntitle: 新政策\nstatus: in_review\n---\n新\n")
    assert run(tmp_path, "--author", "alice")[0].strip() == "0 created, 1 updated, 0 unchanged, 0 skipped."
    article.refresh_from_db()
    assert article.status == Article.Status.IN_REVIEW and article.title == "新政策"


def test_a_dry_run_reports_and_saves_nothing(faq, alice, lena):
    out, _err = run(faq, "--author", "alice", "--dry-run")
    assert out.strip() == "Dry run, nothing saved: 3 created, 0 updated, 0 unchanged, 0 skipped."
    assert Article.objects.count() == 0 and KbCategory.objects.count() == 0


def test_a_missing_folder_or_user_is_a_clear_error(tmp_path, alice):
    assert failing(tmp_path / "nope")[0].startswith("No such file or folder")
    assert failing(tmp_path, "--author", "ghost")[0] == "No user ghost."


def test_one_file_may_be_imported_on_its_own(tmp_path, alice):
    path = write(tmp_path, "Refund Policy.md", "Body only.\n")
    run(path)
    article = Article.objects.get()
    assert (article.slug, article.title, article.body) == ("refund-policy", "Refund Policy", "Body only.")


# --- parsing (no database) -------------------------------------------------------------------


def test_parse_reads_windows_line_endings_a_byte_order_mark_and_comma_separated_tags():
    text = "\ufeff---\r\ntitle: 标题\r\ntags: a, b ,a\r\n---\r\n正文\r\n"
    parsed = parse("x.md", text.encode())
    assert (parsed.title, parsed.body, parsed.tags, parsed.slug) == ("标题", "正文", ("a", "b"), "x")
    assert parsed.status is None and parsed.audience is None and parsed.category is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("---\ntags: {a: 1}\n---\nx", "tags must be a list"),
        ("---\ntags: [[a]]\n---\nx", "tags must be text"),
        (f"---\ntags: [{'t' * 51}]\n---\nx", "tags is longer than 50 characters"),
        (f"---\ntitle: {'t' * 201}\n---\nx", "title is longer than 200 characters"),
        ("---\ncategory: a//b\n---\nx", "empty part"),
        ("---\nlanguage: fr\n---\nx", "language “fr” is not one of"),
        ("---\ntitle: yes\n---\nx", "title must be text"),
        ("---\n1: x\n---\nx", "every front matter key"),
        ("---\ntitle: a\x00b\n---\nx", "NUL"),
        ("---\ndate: 2024-02-30\n---\nx", "not valid YAML"),
    ],
)
def test_parse_refuses_values_it_would_have_to_guess_at(text, reason):
    with translation.override("en"), pytest.raises(BadFile) as refused:
        parse("x.md", text.encode())
    assert reason in refused.value.reason
