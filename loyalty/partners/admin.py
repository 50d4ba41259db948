from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin

from loyalty.core.admin import ReadOnlyAdminMixin
from loyalty.partners import webhooks
from loyalty.partners.models import (
    OutboxEvent,
    Partner,
    PartnerAPIKey,
    PartnerMember,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "status", "earn_multiplier", "cost_per_point")
    list_filter = ("kind", "status")
    search_fields = ("name",)


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


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "partner", "is_active", "disabled_reason", "failing_since", "created_at")
    list_filter = ("is_active", "partner")
    readonly_fields = ("partner", "url", "event_types", "failing_since", "disabled_reason", "created_at", "deleted_at")
    exclude = ("secret_encrypted",)

    def has_add_permission(self, request):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "event", "endpoint", "status", "attempts", "next_attempt_at", "delivered_at")
    list_filter = ("status",)
    readonly_fields = ("endpoint", "event", "status", "attempts", "next_attempt_at", "delivered_at", "created_at")
    inlines = [WebhookAttemptInline]
    actions = ["redeliver"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Redeliver now")
    def redeliver(self, request, queryset):
        for delivery in queryset.select_related("endpoint", "event"):
            result = webhooks.delivery_redeliver(delivery=delivery)
            self.message_user(request, f"{delivery}: {result.status}")


@admin.register(PartnerMember)
class PartnerMemberAdmin(admin.ModelAdmin):
    list_display = ("partner", "member", "via", "linked_at")
    list_filter = ("partner", "via")
    search_fields = ("=member__member_number",)
    raw_id_fields = ("member",)

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PartnerAPIKey)
class PartnerAPIKeyAdmin(APIKeyModelAdmin):
    list_display = (*APIKeyModelAdmin.list_display, "partner", "scopes", "last_used_at")
    list_filter = ("partner", "revoked")
