from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from loyalty.core.admin import DeleteEachAdminMixin, ReadOnlyAdminMixin
from loyalty.core.errors import ValidationFailed
from loyalty.partners import staff_services, webhooks
from loyalty.partners.models import (
    WEBHOOK_EVENT_TYPES,
    OutboxEvent,
    Partner,
    PartnerAPIKey,
    PartnerMember,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

API_SCOPES = [
    ("read", "Read: look up members, balances, entries, offers, rewards"),
    ("write", "Write: enroll, purchases, returns, redemptions, events, coupons, webhooks"),
]


@admin.register(Partner)
class PartnerAdmin(DeleteEachAdminMixin, admin.ModelAdmin):
    list_display = ("name", "kind", "status", "earn_multiplier", "cost_per_point")
    list_filter = ("kind", "status")
    search_fields = ("name",)
    readonly_fields = ("api_keys",)

    def get_fields(self, request, obj=None):
        """The keys' list only for staff who may view API keys (the matrix: Analyst, superusers)."""
        fields = [f for f in super().get_fields(request, obj) if f != "api_keys"]
        return [*fields, "api_keys"] if request.user.has_perm("partners.view_partnerapikey") else fields

    @admin.display(description="API keys")
    def api_keys(self, obj):
        """The partner's keys, read-only; created, changed and revoked on the one API keys screen."""
        if not obj.pk:
            return "Save the partner first, then create its keys."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    key.name,
                    key.prefix,
                    ", ".join(key.scopes) or "none",
                    f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never",
                    "revoked" if key.revoked else "active",
                )
                for key in PartnerAPIKey.objects.filter(partner=obj).order_by("-created")
            ),
        )
        add = reverse("admin:partners_partnerapikey_add") + f"?partner={obj.pk}"
        return format_html(
            '<table id="partner-keys"><thead><tr><th>Name</th><th>Prefix</th><th>Scopes</th><th>Last used</th>'
            '<th>State</th></tr></thead><tbody>{}</tbody></table><p><a href="{}">Create an API key for this partner</a>'
            " (shown once, when created)</p>",
            rows,
            add,
        )

    def save_model(self, request, obj, form, change):
        staff_services.partner_save(partner=obj, actor=request.user, created=not change, reason="admin")

    def delete_model(self, request, obj):
        staff_services.partner_delete(partner=obj, actor=request.user, reason="admin")


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: events are written by services and delivered by jobs."""

    list_display = ("created_at", "event_type", "member", "published_at")
    list_filter = ("event_type", ("published_at", admin.EmptyFieldListFilter))
    search_fields = ("=member__member_number", "event_type")
    date_hierarchy = "created_at"
    readonly_fields = ("event_type", "member", "payload", "created_at", "published_at")
    list_select_related = ("member",)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("attempted_at", "status_code", "response_ms", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class WebhookEndpointAddForm(forms.ModelForm):
    """Staff register a partner's endpoint: the URL is checked as the API checks it."""

    url = forms.URLField(label="URL (https)", max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in WEBHOOK_EVENT_TYPES], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("partner", "url", "event_types")

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            webhooks.webhook_url_check(url)
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(DeleteEachAdminMixin, admin.ModelAdmin):
    list_display = ("url", "partner", "is_active", "disabled_reason", "failing_since", "created_at")
    list_filter = ("is_active", "partner")
    readonly_fields = ("partner", "url", "event_types", "failing_since", "disabled_reason", "created_at", "deleted_at")
    exclude = ("secret_encrypted",)  # the signing secret is shown once, when the endpoint is added

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = WebhookEndpointAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request, obj=None):
        return ("partner", "url", "event_types") if obj is None else super().get_fields(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            staff_services.webhook_endpoint_save(endpoint=obj, actor=request.user, reason="admin")
            return
        endpoint, secret = staff_services.webhook_endpoint_register(
            partner=form.cleaned_data["partner"],
            url=form.cleaned_data["url"],
            event_types=form.cleaned_data["event_types"],
            actor=request.user,
            reason="admin",
        )
        for field in ("pk", "event_types", "secret_encrypted", "created_at"):
            setattr(obj, field, getattr(endpoint, field))
        self.message_user(
            request, f"Signing secret (shown only now; give it to the partner): {secret}", level=messages.WARNING
        )

    def delete_model(self, request, obj):
        staff_services.webhook_endpoint_remove(endpoint=obj, actor=request.user, reason="admin")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "event", "endpoint", "status", "attempts", "next_attempt_at", "delivered_at")
    list_filter = ("status",)
    readonly_fields = ("endpoint", "event", "status", "attempts", "next_attempt_at", "delivered_at", "created_at")
    inlines = [WebhookAttemptInline]
    actions = ["redeliver"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Redeliver now", permissions=("change",))
    def redeliver(self, request, queryset):
        for delivery in queryset.select_related("endpoint", "event"):
            result = webhooks.delivery_redeliver(delivery=delivery)
            self.message_user(request, f"{delivery}: {result.status}")


@admin.register(PartnerMember)
class PartnerMemberAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: a link decides what a partner may see and burn; only enrollment, consent and
    purchases create one (by hand it would widen a partner's access)."""

    list_display = ("partner", "member", "via", "linked_at")
    list_filter = ("partner", "via")
    search_fields = ("=member__member_number",)
    raw_id_fields = ("member",)


class PartnerAPIKeyForm(forms.ModelForm):
    """Scopes as checkboxes (not a JSON list)."""

    scopes = forms.MultipleChoiceField(
        choices=API_SCOPES, widget=forms.CheckboxSelectMultiple, required=True, help_text="What the key may do."
    )

    class Meta:
        model = PartnerAPIKey
        fields = ("partner", "name", "scopes", "expiry_date", "revoked")

    def clean_scopes(self):
        return sorted(self.cleaned_data["scopes"])


@admin.register(PartnerAPIKey)
class PartnerAPIKeyAdmin(DeleteEachAdminMixin, APIKeyModelAdmin):
    """The one place where partner API keys are created, changed and revoked (the partner's page
    lists them and links here)."""

    form = PartnerAPIKeyForm
    list_display = (*APIKeyModelAdmin.list_display, "partner", "scopes", "last_used_at")
    list_filter = ("partner", "revoked")

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "last_used_at")

    def save_model(self, request, obj, form=None, change=False):
        if change:
            staff_services.partner_api_key_save(key=obj, actor=request.user, reason="admin")
            return
        _, raw = staff_services.partner_api_key_issue(key=obj, actor=request.user, reason="admin")
        self.message_user(
            request,
            f"The API key for {obj.name} is: {raw}. Store it somewhere safe: it is not shown again.",
            messages.WARNING,
        )

    def delete_model(self, request, obj):
        staff_services.partner_api_key_delete(key=obj, actor=request.user, reason="admin")


# The library's own key model is not used (partners' keys are PartnerAPIKey): no screen for it.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)
