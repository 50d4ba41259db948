"""Referrals in the admin: Marketing sets each program's referral settings (audited); referrals are
records written by enrollments, purchases and returns, read-only for everyone."""

from __future__ import annotations

from django.contrib import admin

from loyalty.engagement.models import Referral, ReferralSettings
from loyalty.engagement.services.referrals import referral_settings_save


@admin.register(ReferralSettings)
class ReferralSettingsAdmin(admin.ModelAdmin):
    list_display = (
        "program",
        "is_active",
        "min_spend",
        "within_days",
        "referrer_points",
        "referee_points",
        "monthly_cap",
    )
    readonly_fields = ("updated_at",)

    def save_model(self, request, obj, form, change):
        referral_settings_save(settings=obj, actor=request.user, created=not change)

    def has_delete_permission(self, request, obj=None):
        return False  # switch a program's referrals off instead


@admin.register(Referral)
class ReferralAdmin(admin.ModelAdmin):
    list_display = ("referrer", "referee", "status", "channel", "joined_at", "qualified_at", "referrer_points", "note")
    list_filter = ("status", "channel", "program")
    search_fields = ("=referrer__member_number", "=referee__member_number")
    list_select_related = ("referrer", "referee")
    raw_id_fields = ("referrer", "referee", "purchase")
    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
