from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from .models import Agent, Customer, CustomerIdentity, Skill, Tag, Team
from .pii import can_see_pii, shown_contact

admin.site.site_header = _("Helpdesk administration")
admin.site.site_title = _("Helpdesk")
admin.site.index_title = _("Support centre")


@admin.register(Team)
class TeamAdmin(SimpleHistoryAdmin):
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
class AgentAdmin(SimpleHistoryAdmin):
    list_display = ["display_name", "user", "presence", "max_concurrent"]
    list_filter = ["presence", "teams", "skills"]
    list_select_related = ["user"]
    search_fields = ["display_name", "user__username"]
    filter_horizontal = ["teams", "skills"]
    autocomplete_fields = ["user"]
    readonly_fields = ["presence_changed_at"]


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
class CustomerAdmin(SimpleHistoryAdmin):
    list_display = ["name", "tier", "phone", "email", "first_seen_at"]
    list_filter = ["tier", ("first_seen_at", admin.DateFieldListFilter)]
    search_fields = ["name", "phone", "email", "identities__external_id"]
    inlines = [CustomerIdentityInline]
    autocomplete_fields = ["tags"]
    show_full_result_count = False

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
