from django.contrib import admin

from loyalty.partners.models import OutboxEvent, Partner


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "status", "earn_multiplier", "cost_per_point")
    list_filter = ("kind", "status")
    search_fields = ("name",)


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    """Read-only: events are written by services and delivered by jobs."""

    list_display = ("created_at", "event_type", "member", "published_at")
    list_filter = ("event_type", ("published_at", admin.EmptyFieldListFilter))
    search_fields = ("=member__member_number", "event_type")
    date_hierarchy = "created_at"
    readonly_fields = ("event_type", "member", "payload", "created_at", "published_at")
    list_select_related = ("member",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
