from django.contrib import admin

from loyalty.activity.models import EarningRule, EventRule, EventType, MemberEvent
from loyalty.activity.services import rule_config
from loyalty.core.admin import DeleteEachAdminMixin, ReadOnlyAdminMixin


@admin.register(EarningRule)
class EarningRuleAdmin(DeleteEachAdminMixin, admin.ModelAdmin):
    list_display = (
        "name",
        "program",
        "kind",
        "multiplier",
        "bonus_points",
        "priority",
        "stackable",
        "is_active",
        "valid_from",
        "valid_until",
    )
    list_filter = ("program", "kind", "is_active", "stackable")
    search_fields = ("name",)
    fieldsets = (
        (None, {"fields": ("program", "name", "kind", "is_active", "priority", "stackable", "partner")}),
        ("What it applies to", {"fields": ("categories", "skus", "min_spend")}),
        ("What it gives", {"fields": ("multiplier", "bonus_points")}),
        ("Limits", {"fields": ("valid_from", "valid_until", "cap_per_day", "cap_per_month")}),
    )

    def save_model(self, request, obj, form, change):
        rule_config.earning_rule_save(rule=obj, actor=request.user, created=not change, reason="admin")

    def delete_model(self, request, obj):
        rule_config.earning_rule_delete(rule=obj, actor=request.user, reason="admin")


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    list_display = ("code", "name")
    search_fields = ("code", "name")


@admin.register(EventRule)
class EventRuleAdmin(DeleteEachAdminMixin, admin.ModelAdmin):
    list_display = ("event_type", "program", "points", "limit_per_day", "limit_per_week", "limit_lifetime", "is_active")
    list_filter = ("program", "is_active", "event_type")

    def save_model(self, request, obj, form, change):
        rule_config.event_rule_save(rule=obj, actor=request.user, created=not change, reason="admin")

    def delete_model(self, request, obj):
        rule_config.event_rule_delete(rule=obj, actor=request.user, reason="admin")


@admin.register(MemberEvent)
class MemberEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("occurred_at", "event_type", "member", "partner", "points", "note")
    list_filter = ("event_type",)
    search_fields = ("=member__member_number", "=external_id")
    raw_id_fields = ("member",)
