"""Admin pages for integrations: API keys and webhooks."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import admin_audit
from .admin_history import AuditedAdmin
from .api_keys import create_api_key, revoke_api_key
from .models import ApiKey, WebhookDelivery, WebhookEndpoint
from .webhooks import forget_endpoints


class ApiKeyCreationForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name", "scope", "user"]
        help_texts = {"user": gettext_lazy("Leave empty to create an integration user in the API Client role.")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].required = False


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedAdmin):
    list_display = ["name", "prefix", "scope", "user", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["prefix", "user", "scope", "created_at", "last_used_at", "revoked_at"]
    autocomplete_fields = ["user"]
    actions = ["revoke"]

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, change: bool = False, **kwargs: Any):
        if obj is None:
            kwargs["form"] = ApiKeyCreationForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        return [] if obj is None else self.readonly_fields

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        return ["name", "scope", "user"] if obj is None else ["name", *self.readonly_fields]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        api_key, plain = create_api_key(name=data["name"], scope=data["scope"], user=data.get("user"))
        obj.pk = api_key.pk
        obj.refresh_from_db()
        self.message_user(
            request,
            _("The new key is %(key)s. Copy it now: it is stored hashed and cannot be shown again.") % {"key": plain},
            messages.WARNING,
        )

    @admin.action(description=gettext_lazy("Revoke selected keys"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset:
            revoke_api_key(api_key=api_key)
        self.message_user(request, _("Revoked."), messages.SUCCESS)

    def get_urls(self) -> list:
        return [*admin_audit.audit_urls(), *super().get_urls()]  # the audit trail: who did what, by key or in person


admin_audit.link_from_index(admin.site)


class WebhookEndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        label=gettext_lazy("events"), choices=WebhookEndpoint.Event.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "secret", "events", "is_active"]
        widgets = {"secret": forms.PasswordInput(render_value=True)}


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ["created_at", "event", "status", "attempts", "response_code", "error", "delivered_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        # The latest 20 only: an endpoint may have millions of deliveries.
        ids = list(super().get_queryset(request).order_by("-created_at").values_list("pk", flat=True)[:20])
        return super().get_queryset(request).filter(pk__in=ids)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(AuditedAdmin):
    form = WebhookEndpointForm
    list_display = ["name", "url", "is_active", "created_at"]
    inlines = [DeliveryInline]

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        forget_endpoints()

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        super().delete_model(request, obj)
        forget_endpoints()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        super().delete_queryset(request, queryset)
        forget_endpoints()


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "endpoint", "event", "status", "attempts", "response_code", "delivered_at"]
    list_filter = ["status", "event", "endpoint"]
    list_select_related = ["endpoint"]
    readonly_fields = ["endpoint", "event", "payload", "status", "attempts", "response_code", "error", "created_at", "delivered_at"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        return False
