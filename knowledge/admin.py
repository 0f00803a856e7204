"""The knowledge base in the staff admin: articles with their review workflow and versions, and
the category tree. Every write goes through knowledge.services; this module only shows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ORDER_VAR
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from helpdesk.admin_history import AuditedAdmin
from helpdesk.errors import DomainError

from . import admin_assist, queries, services
from .admin_versions import article_versions
from .forms import ArticleForm, KbCategoryForm, ReviewNoteForm
from .models import Article, KbCategory
from .rendering import to_html

S = Article.Status
SEARCH_HITS = 100
PUBLISH = services.PUBLISH_PERMISSION
CHANGE = "knowledge.change_article"


@dataclass(frozen=True)
class Step:
    """A workflow button: its label, the permission it needs, the statuses it shows in, the
    service it calls (article, user, note) and what to say once done."""

    label: Any
    permission: str
    shown_in: frozenset[str]
    run: Callable[[Article, Any, str], Any]
    done: Any


STEPS = {
    "submit": Step(
        gettext_lazy("Send for review"), CHANGE, frozenset({S.DRAFT}),
        lambda article, user, note: services.submit_for_review(article=article, actor=user),
        gettext_lazy("Sent for review: someone other than its author will check it."),
    ),
    "publish": Step(
        gettext_lazy("Publish"), PUBLISH, frozenset({S.IN_REVIEW}),
        lambda article, user, note, seen=None: services.publish(
            article=article, reviewer=user, note=note, seen_version=seen, check_seen=True,
        ),
        gettext_lazy("Published: readers now see this version."),
    ),
    "send_back": Step(
        gettext_lazy("Send back to the author"), PUBLISH, frozenset({S.IN_REVIEW}),
        lambda article, user, note: services.reject(article=article, reviewer=user, note=note),
        gettext_lazy("Sent back to the author with your note."),
    ),
    "archive": Step(
        gettext_lazy("Archive"), PUBLISH, frozenset({S.DRAFT, S.IN_REVIEW, S.PUBLISHED}),
        lambda article, user, note: services.archive(article=article, actor=user),
        gettext_lazy("Archived: readers no longer see it."),
    ),
    "restore": Step(
        gettext_lazy("Restore as a draft"), CHANGE, frozenset({S.ARCHIVED}),
        lambda article, user, note: services.restore(article=article, actor=user),
        gettext_lazy("Restored as a draft: it is shown again once a reviewer publishes it."),
    ),
}


@admin.register(Article)
class ArticleAdmin(AuditedAdmin):
    form = ArticleForm
    list_display = [
        "title", "status", "audience", "category", "owner", "review_due_on", "helpful_count", "unhelpful_count",
        "usage_count",
    ]
    list_filter = ["status", "audience", "category", "language"]
    list_select_related = ["category", "owner"]
    search_fields = ["title"]  # replaced by get_search_results: the knowledge-base search
    search_help_text = gettext_lazy("Words in Chinese or English, ranked as agents' search ranks them; or part of a slug.")
    show_full_result_count = False
    list_per_page = 50
    filter_horizontal = ["ticket_categories"]
    # No "publish" on the list: a reviewer publishes from the article's page, having read it.
    actions = ["submit_selected", "archive_selected"]
    change_form_template = "admin/knowledge/article/change_form.html"
    change_list_template = "admin/knowledge/article/change_list.html"
    object_history_template = "admin/knowledge/article/object_history.html"
    fieldsets = [
        (None, {"fields": ["title", "slug", "body", "tags"]}),
        (gettext_lazy("Where it belongs"), {"fields": ["language", "category", "audience", "ticket_categories"]}),
        (gettext_lazy("Upkeep"), {"fields": ["owner", "review_due_on"]}),
    ]
    info_fieldsets = [
        (gettext_lazy("Preview"), {"fields": ["preview", "live_version"]}),
        (
            gettext_lazy("Review"),
            {"fields": ["status", "review_note", "created_by", "edited_by", "submitted_by", "reviewed_by", "published_at"]},
        ),
        (gettext_lazy("Readers"), {"fields": ["helpful_count", "unhelpful_count", "usage_count"]}),
    ]
    info_fields = [name for _title, options in info_fieldsets for name in options["fields"]]

    class Media:
        css = {"all": ["knowledge/admin.css"]}

    # --- the list -------------------------------------------------------------------

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Article], search_term: str
    ) -> tuple[QuerySet[Article], bool]:
        """The knowledge-base search, best first, then titles and slugs that merely contain the
        text (an archived article, a slug typed in part)."""
        term = search_term.strip()[:200]
        if not term:
            return queryset, False
        hits = services.find(term, user=request.user, source="admin", public_only=False, limit=SEARCH_HITS)
        ids = [hit.article_id for hit in hits]
        plain = Q(title__icontains=term) | Q(live_title__icontains=term) | Q(slug__icontains=term)
        rank = Case(
            *[When(pk=pk, then=Value(position)) for position, pk in enumerate(ids)],
            default=Value(len(ids)),
            output_field=IntegerField(),
        )
        found = queryset.filter(Q(pk__in=ids) | plain).annotate(kb_rank=rank)
        if ORDER_VAR not in request.GET:  # a column the user sorts by wins over the rank
            found = found.order_by("kb_rank", "-pk")
        return found, False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if may_see_gap_report(request.user):
            extra_context = {**(extra_context or {}), "gap_report_url": reverse("admin:knowledge_gap_report")}
        return super().changelist_view(request, extra_context)

    # --- list actions: each calls a service per article and reports what it refused ----

    def _apply(self, request: HttpRequest, queryset: QuerySet[Article], step: str) -> None:
        done, refused = 0, []
        for article in queryset.order_by("pk"):
            try:
                STEPS[step].run(article, request.user, "")
                done += 1
            except DomainError as error:
                refused.append(f"{article}: {error.message}")
        if done:
            self.message_user(request, ngettext("%d article updated.", "%d articles updated.", done) % done, messages.SUCCESS)
        if refused:
            more = " …" if len(refused) > 20 else ""
            self.message_user(request, _("Refused: %s") % "; ".join(refused[:20]) + more, messages.ERROR)

    @admin.action(description=gettext_lazy("Send for review"), permissions=["change"])
    def submit_selected(self, request: HttpRequest, queryset: QuerySet[Article]) -> None:
        self._apply(request, queryset, "submit")

    @admin.action(description=gettext_lazy("Publish (approve the change under review)"), permissions=["publish"])
    def publish_selected(self, request: HttpRequest, queryset: QuerySet[Article]) -> None:
        self._apply(request, queryset, "publish")

    @admin.action(description=gettext_lazy("Archive"), permissions=["publish"])
    def archive_selected(self, request: HttpRequest, queryset: QuerySet[Article]) -> None:
        self._apply(request, queryset, "archive")

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PUBLISH)

    # --- the article page -------------------------------------------------------------

    def has_change_permission(self, request: HttpRequest, obj: Article | None = None) -> bool:
        # An archived article is read-only until it is restored (services refuse the change).
        if obj is not None and obj.status == S.ARCHIVED:
            return False
        return super().has_change_permission(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: Article | None = None) -> list:
        return list(self.fieldsets) if obj is None else [*self.fieldsets, *self.info_fieldsets]

    def get_readonly_fields(self, request: HttpRequest, obj: Article | None = None) -> list[str]:
        return [] if obj is None else list(self.info_fields)

    @admin.display(description=gettext_lazy("working copy, as readers will see it"))
    def preview(self, article: Article) -> str:
        # to_html() removes anything that could run (rendering.py), so it may be shown as is.
        return format_html('<div class="kb-preview"><h1>{}</h1>{}</div>', article.title, mark_safe(to_html(article.body)))

    @admin.display(description=gettext_lazy("published version"))
    def live_version(self, article: Article) -> str:
        if not article.is_live:
            return _("Not published: readers see nothing yet.")
        if (article.live_title, article.live_body) == (article.title, article.body):
            return _("The same as the working copy.")
        return format_html(
            '<div class="kb-preview kb-live"><h1>{}</h1>{}</div>', article.live_title, mark_safe(article.live_html)
        )

    def save_model(self, request: HttpRequest, obj: Article, form: ArticleForm, change: bool) -> None:
        """Through the services: a change to a published article waits for review."""
        try:
            if change:
                was_live = obj.pk is not None and Article.objects.filter(pk=obj.pk, status=S.PUBLISHED).exists()
                article = services.update_article(
                    article=obj, actor=request.user, changes=form.changes(), tags=form.cleaned_data["tags"],
                    ticket_categories=form.cleaned_data["ticket_categories"],
                )
                if was_live and article.status == S.DRAFT:
                    self.message_user(
                        request, _("Your change waits for review; readers still see the published version."),
                        messages.WARNING,
                    )
            else:
                fields = form.changes()
                if fields["owner"] is None:
                    del fields["owner"]  # the writer looks after it unless someone is named
                article = services.create_article(
                    actor=request.user, tags=form.cleaned_data["tags"],
                    ticket_categories=form.cleaned_data["ticket_categories"], **fields,
                )
        except DomainError as error:
            request._kb_refused = error  # answered by response_add / response_change
            return
        obj.pk = article.pk
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # tags and ticket categories were set by the service in save_model

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None if hasattr(request, "_kb_refused") else super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None if hasattr(request, "_kb_refused") else super().log_change(request, obj, message)

    def _refused(self, request: HttpRequest, url: str) -> HttpResponse:
        error = request._kb_refused
        self.message_user(request, _("Not saved: %s") % error.message, messages.ERROR)
        return HttpResponseRedirect(url)

    def response_add(self, request: HttpRequest, obj: Article, post_url_continue: str | None = None) -> HttpResponse:
        if hasattr(request, "_kb_refused"):
            return self._refused(request, reverse("admin:knowledge_article_add"))
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: Article) -> HttpResponse:
        if hasattr(request, "_kb_refused"):
            return self._refused(request, reverse("admin:knowledge_article_change", args=[obj.pk]))
        return super().response_change(request, obj)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        article = self.get_object(request, unquote(object_id))
        context = self._workflow_context(request, article) if article is not None else {}
        return super().change_view(request, object_id, form_url, {**context, **(extra_context or {})})

    def _workflow_context(self, request: HttpRequest, article: Article) -> dict[str, Any]:
        user = request.user
        steps = [
            (name, step.label) for name, step in STEPS.items()
            if article.status in step.shown_in and user.has_perm(step.permission)
        ]
        own_change = user.pk in (article.edited_by_id, article.submitted_by_id)
        if own_change:  # the service refuses it anyway; say why instead of offering it
            steps = [(name, label) for name, label in steps if name not in ("publish", "send_back")]
        return {
            "workflow_steps": steps,
            "note_form": ReviewNoteForm(),
            "takes_note": any(name in ("publish", "send_back") for name, _label in steps),
            "awaits_other_reviewer": own_change and article.status == S.IN_REVIEW and user.has_perm(PUBLISH),
        }

    # --- workflow and versions -----------------------------------------------------------

    def get_urls(self) -> list:
        return [
            path("gaps/", self.admin_site.admin_view(self.gap_report_view), name="knowledge_gap_report"),
            path(
                "<path:object_id>/workflow/<slug:step>/", self.admin_site.admin_view(self.workflow_view),
                name="knowledge_article_workflow",
            ),
            path(
                "<path:object_id>/feedback/", self.admin_site.admin_view(admin_assist.feedback_view),
                name="knowledge_article_feedback",
            ),
            path(
                "<path:object_id>/revert/<int:history_id>/", self.admin_site.admin_view(self.revert_view),
                name="knowledge_article_revert",
            ),
            *super().get_urls(),
        ]

    def _article(self, request: HttpRequest, object_id: str) -> Article:
        article = self.get_object(request, unquote(object_id))
        if article is None:
            raise Http404
        return article

    def workflow_view(self, request: HttpRequest, object_id: str, step: str) -> HttpResponse:
        """A workflow button: POST only, the service decides, its refusal is shown as an error."""
        article = self._article(request, object_id)
        change_url = reverse("admin:knowledge_article_change", args=[article.pk])
        if step not in STEPS:
            raise Http404
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        if not request.user.has_perm(STEPS[step].permission):
            raise PermissionDenied
        form = ReviewNoteForm(request.POST)
        if not form.is_valid():
            self.message_user(request, "; ".join(form.errors["note"]), messages.ERROR)
            return HttpResponseRedirect(change_url)
        try:
            if step == "publish":  # exactly the version the reviewer read (the page sends it)
                STEPS[step].run(article, request.user, form.cleaned_data["note"], form.cleaned_data["seen"])
            else:
                STEPS[step].run(article, request.user, form.cleaned_data["note"])
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, str(STEPS[step].done), messages.SUCCESS)
        return HttpResponseRedirect(change_url)

    def revert_view(self, request: HttpRequest, object_id: str, history_id: int) -> HttpResponse:
        article = self._article(request, object_id)
        history_url = reverse("admin:knowledge_article_history", args=[article.pk])
        if request.method != "POST":
            return HttpResponseRedirect(history_url)
        if not request.user.has_perm(CHANGE):
            raise PermissionDenied
        try:
            services.revert(article=article, history_id=history_id, actor=request.user)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(history_url)
        self.message_user(
            request, _("The working copy is that version again; send it for review to publish it."), messages.SUCCESS
        )
        return HttpResponseRedirect(reverse("admin:knowledge_article_change", args=[article.pk]))

    def history_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None) -> HttpResponse:
        """The versions with what changed in each, and a revert button on the earlier ones."""
        article = self._article(request, object_id)
        if not self.has_view_or_change_permission(request, article):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": _("Versions of %s") % article,
            "opts": self.model._meta,
            "object": article,
            "original": article,
            "versions": article_versions(article),
            "may_revert": request.user.has_perm(CHANGE) and article.status != S.ARCHIVED,
            "revert_url": reverse("admin:knowledge_article_revert", args=[article.pk, 0]),
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.object_history_template, context)

    def history_form_view(self, request: HttpRequest, object_id: str, version_id: str, extra_context: dict | None = None) -> HttpResponse:
        # The versions page shows each version's text; simple-history's form view would build
        # the article form around a historical row.
        return HttpResponseRedirect(reverse("admin:knowledge_article_history", args=[self._article(request, object_id).pk]))

    def gap_report_view(self, request: HttpRequest) -> HttpResponse:
        from .admin_gaps import gap_report_view

        return gap_report_view(request, self.admin_site)


def may_see_gap_report(user: Any) -> bool:
    """Team leads, trainers and administrators: who may read the search log."""
    return user.has_perm("knowledge.view_searchlog")


@admin.register(KbCategory)
class KbCategoryAdmin(admin.ModelAdmin):
    form = KbCategoryForm
    list_display = ["name", "slug", "position", "article_count"]
    list_editable = ["position"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[KbCategory]:
        return super().get_queryset(request).annotate(article_count=Count("articles"))

    @admin.display(description=gettext_lazy("articles"), ordering="article_count")
    def article_count(self, category: KbCategory) -> int:
        return category.article_count

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        """The name column shows the path from the root; the tree is read once a page."""
        paths = queries.category_paths()

        @admin.display(description=gettext_lazy("category"), ordering="name")
        def path_column(category: KbCategory) -> str:
            return paths.get(category.pk, category.name)

        return [path_column, *self.list_display[1:]]

    def get_list_display_links(self, request: HttpRequest, list_display: Any) -> list[Any]:
        return [list_display[0]]


# Registered in their own modules, imported here so the admin finds them.
from . import admin_cases, admin_replies  # noqa: E402, F401
