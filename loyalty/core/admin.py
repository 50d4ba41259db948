from django.contrib import admin

from loyalty.core.models import AuditEvent


class ReadOnlyAdminMixin:
    """Staff may look, never add, change or delete (ledgers, logs, derived data)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "actor_label", "action", "target_type", "target_repr", "reason")
    list_filter = ("action", "target_type")
    search_fields = ("target_id", "target_repr", "actor_label", "reason")
    date_hierarchy = "created_at"
