"""The staff UI for tickets: the list agents work from and the ticket page with its thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from helpdesk.admin_history import AuditedAdmin
from helpdesk.errors import DomainError
from helpdesk.pii import (
    can_see_pii,
    mask_name,
    masked_contact,
    shown_attachments,
    shown_contact,
    text_shown_to,
    texts_shown_to,
)
from helpdesk.queries import agent_of
from knowledge.admin_assist import assist_context, link_inserted_articles
from knowledge.admin_cases import archive_as_training_case, may_archive_cases

from . import queries, routing, services, sla
from .admin_sla import SlaStateFilter, sla_countdown, with_next_due
from .forms import (
    AssignForm,
    EscalateForm,
    HandBackForm,
    ReplyForm,
    StatusForm,
    TagForm,
    TicketChangeForm,
    TicketCreationForm,
)
from .history import recent_changes
from .live import may_watch
from .models import Category, Message, Ticket


@admin.register(Category)
class CategoryAdmin(AuditedAdmin):
    list_display = ["name", "name_en", "code", "parent", "position", "is_active"]
    list_editable = ["position", "is_active"]
    list_filter = ["is_active", "parent"]
    list_select_related = ["parent"]
    search_fields = ["name", "name_en", "code"]


@admin.register(Ticket)
class TicketAdmin(AuditedAdmin):
    list_display = [
        "reference_link",
        "subject",
        "customer_name",
        "channel",
        "priority",
        "status",
        sla_countdown,
        "team",
        "assignee",
        "category",
        "created_at",
        "updated_at",
    ]
    list_display_links = ["reference_link", "subject"]
    list_select_related = ["customer", "team", "assignee", "category"]
    list_filter = [
        "status",
        SlaStateFilter,
        "channel",
        "priority",
        "team",
        "assignee",
        "category",
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["subject"]  # extended in get_search_results
    search_help_text = gettext_lazy(
        "Reference, subject, customer name, phone or email, or words from the conversation."
    )
    autocomplete_fields = ["customer", "team", "assignee", "category"]
    filter_horizontal = ["tags"]
    show_full_result_count = False
    list_per_page = 50
    actions = [
        "assign_to_me", "assign_to", "change_status", "add_tag", "escalate", "hand_back", archive_as_training_case,
    ]
    change_form_template = "admin/tickets/ticket/change_form.html"

    class Media:
        css = {"all": ["tickets/ticket_page.css"]}
    history_diff_excluded = ("tags",)
    fieldsets = [
        (None, {"fields": ["reference_link", "subject", "customer", "channel", "status"]}),
        (gettext_lazy("Handling"), {"fields": ["category", "priority", "team", "assignee", "tags"]}),
        (
            gettext_lazy("Timestamps"),
            {
                "fields": [
                    "created_at",
                    "updated_at",
                    "first_response_at",
                    "last_customer_message_at",
                    "solved_at",
                    "closed_at",
                ],
                "classes": ["collapse"],
            },
        ),
    ]
    timestamp_fields = [
        "created_at",
        "updated_at",
        "first_response_at",
        "last_customer_message_at",
        "solved_at",
        "closed_at",
    ]

    # --- the list -----------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Ticket]:
        return with_next_due(queries.visible_to(request.user, super().get_queryset(request)))

    @admin.display(description=gettext_lazy("reference"), ordering="id")
    def reference_link(self, obj: Ticket) -> str:
        return obj.reference

    def _masked_customer(self, request: HttpRequest) -> Callable[[Ticket], str]:
        """The customer column for a role that must not see names; one object per request."""
        if not hasattr(request, "_masked_customer_column"):

            @admin.display(description=gettext_lazy("customer"), ordering="customer__name")
            def customer(ticket: Ticket) -> str:
                return mask_name(ticket.customer.name)

            request._masked_customer_column = customer
        return request._masked_customer_column

    def _mask(self, request: HttpRequest, names: list[Any], field: str, obj: Ticket | None = None) -> list[Any]:
        """Without the PII right, or on a ticket whose customer the user may not see, the
        customer's name is masked (tickets.queries.hidden_customers)."""
        if can_see_pii(request.user) and (obj is None or not queries.hidden_customers(request.user, [obj])):
            return names
        return [self._masked_customer(request) if name == field else name for name in names]

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return self._mask(request, list(self.list_display), "customer_name")

    def customer_name(self, obj: Ticket) -> str:
        # The page's hidden customers are found once, in get_changelist_instance.
        if obj.customer_id in getattr(obj, "_hidden_customers", ()):
            return mask_name(obj.customer.name)
        return obj.customer.name

    customer_name = admin.display(description=gettext_lazy("customer"), ordering="customer__name")(customer_name)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "customer":
            # Posting the id of a customer the autocomplete does not offer must not reach them.
            kwargs["queryset"] = queries.customers_visible_to(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Ticket], search_term: str
    ) -> tuple[QuerySet[Ticket], bool]:
        # The reference, the subject, the conversation and (with the PII right) the customer's
        # details, in the text as the user reads it (tickets.queries.search).
        return queries.search(request.user, queryset, search_term, customer=True), False

    # --- actions: each calls a service per ticket and reports what it refused ------

    def _apply(
        self, request: HttpRequest, queryset: QuerySet[Ticket], operation: Callable[[Ticket], Any]
    ) -> None:
        done, refused = 0, []
        for ticket in queryset.order_by("pk"):
            try:
                operation(ticket)
                done += 1
            except DomainError as error:
                refused.append(f"{ticket.reference}: {error.message}")
        if done:
            self.message_user(
                request,
                ngettext("%d ticket updated.", "%d tickets updated.", done) % done,
                messages.SUCCESS,
            )
        if refused:
            self.message_user(
                request,
                _("Refused: %s") % "; ".join(refused[:20]) + (" …" if len(refused) > 20 else ""),
                messages.ERROR,
            )

    def _action_form(
        self, request: HttpRequest, queryset: QuerySet[Ticket], form_class: type, action: str, title: str
    ) -> Any:
        """The form of an action that needs input: shown first, applied when submitted."""
        if "apply" in request.POST:
            form = form_class(request.POST)
            if form.is_valid():
                return form
        else:
            form = form_class()
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "form": form,
            "action": action,
            "queryset": queryset[:100],
            "count": queryset.count(),
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "opts": self.model._meta,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/tickets/ticket/action_form.html", context)

    @admin.action(description=gettext_lazy("Assign to me"), permissions=["change"])
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        agent = agent_of(request.user)
        if agent is None:
            self.message_user(request, _("You are not an agent, so tickets cannot be assigned to you."), messages.ERROR)
            return
        # A claim: a ticket someone else holds is refused (use "Assign to…" to take it over).
        self._apply(request, queryset, lambda t: routing.claim_ticket(ticket=t, agent=agent, actor=request.user))

    @admin.action(description=gettext_lazy("Assign to…"), permissions=["change"])
    def assign_to(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
        form = self._action_form(request, queryset, AssignForm, "assign_to", _("Assign tickets"))
        if isinstance(form, TemplateResponse):
            return form
        agent = form.cleaned_data["agent"]
        self._apply(
            request, queryset, lambda t: services.assign_ticket(ticket=t, agent=agent, actor=request.user)
        )
        return None

    @admin.action(description=gettext_lazy("Change status…"), permissions=["change"])
    def change_status(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
        form = self._action_form(request, queryset, StatusForm, "change_status", _("Change status"))
        if isinstance(form, TemplateResponse):
            return form
        status, reason = form.cleaned_data["status"], form.cleaned_data["reason"]
        self._apply(
            request,
            queryset,
            lambda t: services.change_status(ticket=t, status=status, reason=reason, actor=request.user),
        )
        return None

    @admin.action(description=gettext_lazy("Add tag…"), permissions=["change"])
    def add_tag(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
        form = self._action_form(request, queryset, TagForm, "add_tag", _("Add tags"))
        if isinstance(form, TemplateResponse):
            return form
        names = form.cleaned_data["tags"]
        self._apply(request, queryset, lambda t: services.add_tags(ticket=t, names=names, actor=request.user))
        return None

    @admin.action(description=gettext_lazy("Escalate to another team…"), permissions=["escalate"])
    def escalate(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
        form = self._action_form(request, queryset, EscalateForm, "escalate", _("Escalate tickets"))
        if isinstance(form, TemplateResponse):
            return form
        team, reason = form.cleaned_data["team"], form.cleaned_data["reason"]
        self._apply(
            request, queryset, lambda t: services.escalate_ticket(ticket=t, team=team, reason=reason, actor=request.user)
        )
        return None

    @admin.action(description=gettext_lazy("Hand back to the escalating team…"), permissions=["hand_back"])
    def hand_back(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
        form = self._action_form(request, queryset, HandBackForm, "hand_back", _("Hand tickets back"))
        if isinstance(form, TemplateResponse):
            return form
        note = form.cleaned_data["note"]
        self._apply(request, queryset, lambda t: services.hand_back_ticket(ticket=t, note=note, actor=request.user))
        return None

    def has_escalate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tickets.add_escalation")

    def has_hand_back_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tickets.change_escalation")

    def has_archive_case_permission(self, request: HttpRequest) -> bool:
        return may_archive_cases(request.user)

    # --- the ticket page --------------------------------------------------------------

    def get_form(self, request: HttpRequest, obj: Ticket | None = None, change: bool = False, **kwargs: Any):
        kwargs["form"] = TicketCreationForm if obj is None else TicketChangeForm
        if obj is not None:
            self._subjects_as_shown(request, [obj])  # a history version's form too (history_form_view)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Ticket | None = None) -> list:
        if obj is None:
            return [(None, {"fields": [*TicketCreationForm.Meta.fields, "message"]})]
        return [(title, {**options, "fields": self._mask(request, options["fields"], "customer", obj)})
                for title, options in self.fieldsets]

    def get_readonly_fields(self, request: HttpRequest, obj: Ticket | None = None) -> list[str]:
        if obj is None:
            return []
        readonly = ["reference_link", "customer", "channel", "status", *self.timestamp_fields]
        if obj.status == Ticket.Status.CLOSED:
            readonly += ["subject", "category", "priority", "team", "assignee", "tags"]
        return self._mask(request, readonly, "customer", obj)

    def save_model(self, request: HttpRequest, obj: Ticket, form: Any, change: bool) -> None:
        if not change:
            data = form.cleaned_data
            ticket = services.open_ticket(
                customer=data["customer"],
                subject=data["subject"],
                channel=data["channel"],
                category=data["category"],
                priority=data["priority"],
                team=data["team"],
                body=data["message"],
                actor=request.user,
            )
            if data["assignee"] is not None:
                ticket = services.assign_ticket(ticket=ticket, agent=data["assignee"], actor=request.user)
            obj.pk = ticket.pk
            obj.refresh_from_db()
            return
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in services.UPDATABLE_FIELDS}
        if changes:
            services.update_ticket(ticket=obj, changes=changes, actor=request.user)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Tags are the only related data on the form; a new ticket has none yet.
        if change and "tags" in form.changed_data:
            services.set_tags(ticket=form.instance, tags=form.cleaned_data["tags"], actor=request.user)

    def _subjects_as_shown(self, request: HttpRequest, tickets: list[Ticket]) -> None:
        """Customers write subjects: a reader without the PII right and without the right to
        change tickets (inspectors, trainers) gets them scrubbed like the messages, in the list,
        the page's title and its fields. Only the instances in memory change: nothing is saved."""
        if not tickets or can_see_pii(request.user) or self.has_change_permission(request):
            return
        shown = texts_shown_to(request.user, {ticket.customer_id for ticket in tickets})
        for ticket in tickets:
            ticket.subject = shown(ticket.customer_id, ticket.subject)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Ticket | None:
        ticket = super().get_object(request, object_id, from_field)
        if ticket is not None:
            self._subjects_as_shown(request, [ticket])
        return ticket

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        changelist.result_list = list(changelist.result_list)
        self._subjects_as_shown(request, changelist.result_list)
        hidden = queries.hidden_customers(request.user, changelist.result_list)
        for ticket in changelist.result_list:
            ticket._hidden_customers = hidden
        return changelist

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        ticket = self.get_object(request, object_id)
        context = self._ticket_page_context(request, ticket) if ticket is not None else {}
        context.update(extra_context or {})
        return super().change_view(request, object_id, form_url, context)

    def _ticket_page_context(self, request: HttpRequest, ticket: Ticket) -> dict:
        now = timezone.now()
        can_reply = (
            request.user.has_perm("tickets.add_message")
            and agent_of(request.user) is not None
            and ticket.status != Ticket.Status.CLOSED
        )
        customer = ticket.customer
        hidden = bool(queries.hidden_customers(request.user, [ticket]))
        other_tickets = list(
            queries.visible_to(request.user)
            .filter(customer=customer)
            .exclude(pk=ticket.pk)
            .only("id", "subject", "status", "created_at")[:5]
        )
        shown = text_shown_to(request.user, customer.pk, hidden)  # customers type their phone into the chat
        for other in other_tickets:
            other.subject = shown(other.subject)
        return {
            **assist_context(request, ticket, can_reply=can_reply),
            "may_archive_case": may_archive_cases(request.user)
            and ticket.status in (Ticket.Status.SOLVED, Ticket.Status.CLOSED),
            "conversation": [
                (message, shown(message.body), shown_attachments(message.attachments, shown))
                for message in queries.conversation(ticket)
            ],
            "reply_form": ReplyForm(ticket=ticket) if can_reply else None,
            "reply_url": reverse("admin:tickets_ticket_reply", args=[ticket.pk]),
            "customer": customer,
            "customer_contact": masked_contact(customer) if hidden else shown_contact(customer, request.user),
            "customer_identities": customer.identities.all() if can_see_pii(request.user) and not hidden else [],
            "customer_hidden": hidden,
            "other_tickets": other_tickets,
            "recent_changes": recent_changes(ticket),
            "sla_clocks": [
                (clock, sla.remaining_seconds(clock, now) if clock.is_running else None)
                for clock in ticket.sla_clocks.select_related("calendar")
            ],
            "escalations": ticket.escalations.select_related("from_team", "to_team", "created_by", "clock"),
        }

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if may_watch(request.user):  # team leads and administrators: the links to their pages
            extra_context = {**(extra_context or {}), "live_view_url": reverse("admin:live-view")}
        if admin_reports.may_see_reports(request.user):
            extra_context = {**(extra_context or {}), "reports_url": reverse("admin:reports-dashboard")}
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list:
        return [
            *admin_live.live_urls(),
            *admin_reports.report_urls(),
            path(
                "<path:object_id>/reply/",
                self.admin_site.admin_view(self.reply_view),
                name="tickets_ticket_reply",
            ),
            *super().get_urls(),
        ]

    def reply_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Post the reply box: a public reply or an internal note, and maybe a new status."""
        ticket = self.get_object(request, object_id)
        if ticket is None:
            raise Http404
        change_url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        agent = agent_of(request.user)
        if agent is None or not request.user.has_perm("tickets.add_message"):
            self.message_user(request, _("Only agents can reply to tickets."), messages.ERROR)
            return HttpResponseRedirect(change_url)
        form = ReplyForm(request.POST, ticket=ticket)
        if form.is_valid():
            try:
                services.post_message(
                    ticket=ticket,
                    author_kind=Message.AuthorKind.AGENT,
                    agent=agent,
                    body=form.cleaned_data["body"],
                    internal=form.cleaned_data["internal"],
                    status_after=form.cleaned_data["status_after"] or None,
                    actor=request.user,
                )
            except DomainError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                link_inserted_articles(ticket=ticket, agent=agent, article_ids=form.cleaned_data["articles"])
                note = form.cleaned_data["internal"]
                self.message_user(
                    request, _("Internal note added.") if note else _("Reply sent."), messages.SUCCESS
                )
                return HttpResponseRedirect(change_url)
        # Show the ticket page again with the errors and what was typed.
        self.message_user(request, _("The reply was not sent; see the errors below."), messages.ERROR)
        request.method = "GET"  # render the ticket page, not process its form
        response = self.change_view(request, str(ticket.pk), extra_context={"reply_form": form})
        response.status_code = 400
        return response


# Registered in their own modules, imported here so the admin finds them.
from . import (  # noqa: E402, F401
    admin_autoreplies,
    admin_csat,
    admin_imports,
    admin_live,
    admin_report_mail,
    admin_reports,
    admin_routing,
)
