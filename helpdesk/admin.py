from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import admin_access_review, privacy
from .admin_history import AuditedAdmin
from .errors import DomainError
from .models import Agent, Customer, CustomerIdentity, Skill, Tag, Team
from .pii import can_see_pii, shown_contact
from .queries import agent_of, agents_visible_to
from .roles import is_administrator

admin.site.site_header = _("Helpdesk administration")
admin.site.site_title = _("Helpdesk")
admin.site.index_title = _("Support centre")


@admin.register(Team)
class TeamAdmin(AuditedAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ["name", "code"]
    search_fields = ["name", "code"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Agent)
class AgentAdmin(AuditedAdmin):
    list_display = ["display_name", "user", "presence", "max_concurrent"]
    list_filter = ["presence", "teams", "skills"]
    list_select_related = ["user"]
    search_fields = ["display_name", "user__username"]
    filter_horizontal = ["teams", "skills"]
    autocomplete_fields = ["user"]
    readonly_fields = ["presence", "presence_changed_at"]
    actions = ["set_online", "set_away", "set_busy", "set_offline"]

    def get_queryset(self, request: HttpRequest):
        # A team lead manages the agents of their own teams, not the whole organisation.
        return super().get_queryset(request).filter(pk__in=agents_visible_to(request.user).values("pk"))

    def get_readonly_fields(self, request: HttpRequest, obj: Agent | None = None) -> list[str]:
        # Only administrators move agents between teams or re-point them to another user,
        # or a lead could give themselves any team's tickets.
        if is_administrator(request.user):
            return list(self.readonly_fields)
        return [*self.readonly_fields, "user", "teams"]


    def has_presence_permission(self, request: HttpRequest) -> bool:
        return agent_of(request.user) is not None or self.has_change_permission(request)

    def _set_presence(self, request: HttpRequest, queryset, presence: str) -> None:
        """Through routing: online takes waiting tickets, offline hands untouched ones back."""
        from tickets.routing import set_presence

        own = agent_of(request.user)
        if not self.has_change_permission(request):
            queryset = queryset.filter(pk=own.pk if own else None)  # an agent sets only their own
        changed = 0
        for agent in queryset:
            set_presence(agent=agent, presence=presence, actor=request.user)
            changed += 1
        label = Agent.Presence(presence).label
        self.message_user(request, ngettext("%(count)d agent is now %(presence)s.", "%(count)d agents are now %(presence)s.", changed) % {"count": changed, "presence": label})

    @admin.action(description=_("Set online"), permissions=["presence"])
    def set_online(self, request: HttpRequest, queryset) -> None:
        self._set_presence(request, queryset, Agent.Presence.ONLINE)

    @admin.action(description=_("Set away"), permissions=["presence"])
    def set_away(self, request: HttpRequest, queryset) -> None:
        self._set_presence(request, queryset, Agent.Presence.AWAY)

    @admin.action(description=_("Set busy"), permissions=["presence"])
    def set_busy(self, request: HttpRequest, queryset) -> None:
        self._set_presence(request, queryset, Agent.Presence.BUSY)

    @admin.action(description=_("Set offline (untouched tickets go back to the queue)"), permissions=["presence"])
    def set_offline(self, request: HttpRequest, queryset) -> None:
        self._set_presence(request, queryset, Agent.Presence.OFFLINE)


class AgentInline(admin.StackedInline):
    """Lets an administrator make a user an agent on the user's own page."""

    model = Agent
    can_delete = False
    filter_horizontal = ["teams", "skills"]
    readonly_fields = ["presence_changed_at"]


admin.site.unregister(User)


@admin.register(User)
class HelpdeskUserAdmin(UserAdmin):
    inlines = [AgentInline]

    def get_urls(self) -> list:
        return [*admin_access_review.access_review_urls(), *super().get_urls()]  # before <path:object_id>/

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if is_administrator(request.user):
            extra_context = {**(extra_context or {}), "access_review_url": reverse("admin:access-review")}
        return super().changelist_view(request, extra_context)


class CustomerIdentityInline(admin.TabularInline):
    model = CustomerIdentity
    extra = 0


def contact_columns(user) -> list:
    """Admin columns for a customer's name, phone and email, masked for `user` as needed.

    Built per request: a ModelAdmin is shared by every request, so it must not hold the user.
    """

    @admin.display(description=_("name"), ordering="name")
    def shown_name(customer: Customer) -> str:
        return shown_contact(customer, user)["name"]

    @admin.display(description=_("phone"))
    def shown_phone(customer: Customer) -> str:
        return shown_contact(customer, user)["phone"]

    @admin.display(description=_("email"))
    def shown_email(customer: Customer) -> str:
        return shown_contact(customer, user)["email"]

    return [shown_name, shown_phone, shown_email]


@admin.register(Customer)
class CustomerAdmin(AuditedAdmin):
    list_display = ["name", "tier", "phone", "email", "first_seen_at"]
    list_filter = ["tier", ("first_seen_at", admin.DateFieldListFilter)]
    search_fields = ["name", "phone", "email", "identities__external_id"]
    inlines = [CustomerIdentityInline]
    autocomplete_fields = ["tags"]
    show_full_result_count = False
    actions = ["export_data", "erase_personal_data"]
    erase_at_most = 50  # each erasure rewrites every conversation of the customer: keep a request short

    def get_queryset(self, request: HttpRequest) -> QuerySet[Customer]:
        from tickets.queries import (
            customers_visible_to,  # helpdesk loads before tickets
        )

        return customers_visible_to(request.user, super().get_queryset(request))

    def to_field_allowed(self, request: HttpRequest, to_field: str) -> bool:
        # The customer picker (autocomplete) lists customers by their full name; a role that
        # sees them masked opens no ticket and picks no customer.
        return can_see_pii(request.user) and super().to_field_allowed(request, to_field)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None):
        # The page names the customer in its title and breadcrumbs (change_form.html).
        customer = None if can_see_pii(request.user) else self.get_object(request, unquote(object_id))
        if customer is not None:
            extra_context = {**(extra_context or {}), "subtitle": shown_contact(customer, request.user)["name"]}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_list_display(self, request: HttpRequest) -> list:
        if can_see_pii(request.user):
            return self.list_display
        name, phone, email = contact_columns(request.user)
        return [name, "tier", phone, email, "first_seen_at"]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        # Searching by phone or email would reveal them to a role that may not see them.
        return self.search_fields if can_see_pii(request.user) else ["name"]

    def get_fields(self, request: HttpRequest, obj: Customer | None = None) -> list:
        if can_see_pii(request.user):
            return super().get_fields(request, obj)
        return self.get_readonly_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Customer | None = None) -> list:
        if can_see_pii(request.user):
            return super().get_readonly_fields(request, obj)
        return [*contact_columns(request.user), "tier", "first_seen_at"]

    def get_inlines(self, request: HttpRequest, obj: Customer | None) -> list:
        return self.inlines if can_see_pii(request.user) else []

    def history_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None):
        # The audit trail shows old and new contact details in clear.
        if not can_see_pii(request.user):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request: HttpRequest, object_id: str, version_id: str, extra_context: dict | None = None):
        if not can_see_pii(request.user):
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    # --- requests from customers: export and erasure (helpdesk.privacy), administrators only ---

    def has_privacy_permission(self, request: HttpRequest) -> bool:
        return is_administrator(request.user)

    @admin.action(description=_("Export data (JSON)"), permissions=["privacy"])
    def export_data(self, request: HttpRequest, queryset: QuerySet[Customer]) -> HttpResponse | None:
        customers = list(queryset.order_by("pk")[:2])
        if len(customers) != 1:
            self.message_user(request, _("Choose exactly one customer to export."), messages.WARNING)
            return None
        customer = customers[0]
        response = StreamingHttpResponse(
            privacy.export_customer(customer=customer, actor=request.user), content_type="application/json; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{privacy.export_filename(customer.pk)}"'
        return response

    @admin.action(description=_("Erase personal data…"), permissions=["privacy"])
    def erase_personal_data(self, request: HttpRequest, queryset: QuerySet[Customer]) -> HttpResponse | None:
        """A confirmation page first (naming the customers that will be refused and why), then
        the erasure of each customer, reporting those refused."""
        customers = list(queryset.order_by("pk")[: self.erase_at_most + 1])
        if len(customers) > self.erase_at_most:
            message = _("Erase at most %(count)d customers at a time.") % {"count": self.erase_at_most}
            self.message_user(request, message, messages.WARNING)
            return None
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": _("Erase personal data"),
                "opts": self.model._meta,
                "rows": [(customer, privacy.open_tickets(customer)) for customer in customers],
                "action": "erase_personal_data",
                "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
                "select_across": request.POST.get("select_across", "0"),
            }
            return TemplateResponse(request, "admin/helpdesk/customer/erase_confirmation.html", context)
        erased, refused = 0, []
        for customer in customers:
            try:
                privacy.erase_customer(customer=customer, actor=request.user)
                erased += 1
            except DomainError as error:
                refused.append(f"#{customer.pk}: {error.message}")
        if erased:
            done = ngettext("%d customer erased.", "%d customers erased.", erased) % erased
            self.message_user(request, done, messages.SUCCESS)
        if refused:
            self.message_user(request, _("Refused: %s") % "; ".join(refused), messages.ERROR)
        return None


from . import admin_calendars, admin_integrations, admin_notifications, admin_tasks  # noqa: E402,F401  the other admin pages
