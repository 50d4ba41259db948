"""Staff screens for challenges and badges. Writes go through ``engagement.services.challenges``
(audited); progress, completions and members' badges are read-only records.

Roles (docs/permissions.md): Marketing designs challenges and badges and recomputes progress;
Support and Analyst look."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from loyalty.core.admin import DeleteEachAdminMixin, ReadOnlyAdminMixin
from loyalty.core.errors import ApplicationError
from loyalty.engagement.models import Badge, Challenge, ChallengeCompletion, ChallengeProgress, MemberBadge
from loyalty.engagement.selectors.challenges import (
    CompletionRate,
    badge_picture,
    challenge_completion_rates,
    challenge_goal,
    challenges_with_figures,
)
from loyalty.engagement.services import challenges as services


@admin.register(Badge)
class BadgeAdmin(DeleteEachAdminMixin, admin.ModelAdmin):
    list_display = ("picture", "name", "description", "holders_count")
    search_fields = ("name",)
    readonly_fields = ("picture", "created_at")
    fields = ("name", "description", "icon", "image", "picture", "created_at")

    @admin.display(description="Picture")
    def picture(self, obj):
        url = badge_picture(obj) if obj and obj.pk else ""
        return format_html('<img src="{}" alt="" width="32" height="32">', url) if url else "-"

    @admin.display(description="Members holding it")
    def holders_count(self, obj):
        return obj.holders.count()

    def save_model(self, request, obj, form, change):
        services.badge_save(badge=obj, actor=request.user, created=not change, reason="admin")


@admin.register(Challenge)
class ChallengeAdmin(DeleteEachAdminMixin, admin.ModelAdmin):
    list_display = ("name", "program", "goal", "starts_at", "ends_at", "is_active", "completion_rate")
    list_filter = ("program", "kind", "is_active", "requires_opt_in")
    search_fields = ("name",)
    filter_horizontal = ("segments", "tiers")
    readonly_fields = ("completion_figure", "recomputed_at", "created_at")
    actions = ["recompute_progress"]
    fieldsets = (
        (None, {"fields": ("program", "name", "description", "is_active")}),
        ("The goal", {"fields": ("kind", "category", "event_type", "target", "starts_at", "ends_at")}),
        ("Who takes part", {"fields": ("segments", "tiers", "requires_opt_in")}),
        ("What completing it gives", {"fields": ("reward_points", "reward", "badge")}),
        ("Figures", {"fields": ("completion_figure", "recomputed_at", "created_at")}),
    )

    def get_queryset(self, request):
        return challenges_with_figures(super().get_queryset(request).select_related("program", "event_type"))

    @admin.display(description="Goal")
    def goal(self, obj):
        return challenge_goal(
            kind=obj.kind,
            target=obj.target,
            category=obj.category,
            event_type_name=obj.event_type.name if obj.event_type_id else "",
        )

    @admin.display(description="Completed")
    def completion_rate(self, obj):
        return CompletionRate(participants=obj.participants_n, completed=obj.completed_n).text

    @admin.display(description="Completion")
    def completion_figure(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        rate = challenge_completion_rates(challenge_ids=[obj.pk])[obj.pk]
        width = int((rate.rate or 0) * 200)
        return format_html(
            '<svg width="200" height="12" role="img" aria-label="{}"><rect width="200" height="12" fill="#e5e7eb"/>'
            '<rect width="{}" height="12" fill="#2563eb"/></svg> {} members completed it, of {} taking part',
            rate.text,
            width,
            rate.completed,
            rate.participants,
        )

    def save_model(self, request, obj, form, change):
        services.challenge_save(challenge=obj, actor=request.user, created=not change, reason="admin")

    def delete_model(self, request, obj):
        try:
            services.challenge_delete(challenge=obj, actor=request.user, reason="admin")
        except ApplicationError as exc:
            self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)

    @admin.action(description="Recompute progress now (and award completions found)", permissions=("change",))
    def recompute_progress(self, request, queryset):
        for challenge in queryset.select_related("program").prefetch_related("tiers", "segments"):
            report = services.challenge_progress_recompute(challenge=challenge)
            self.message_user(
                request, f"{challenge}: {report.progress_rows} progress rows updated, {report.completed} completed now."
            )


@admin.register(ChallengeProgress)
class ChallengeProgressAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("challenge", "member", "value", "opted_in_at", "updated_at")
    list_filter = ("challenge",)
    search_fields = ("member__member_number",)
    list_select_related = ("challenge", "member")
    raw_id_fields = ("member",)


@admin.register(ChallengeCompletion)
class ChallengeCompletionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("challenge", "member", "completed_at", "points", "coupon", "note")
    list_filter = ("challenge",)
    search_fields = ("member__member_number",)
    list_select_related = ("challenge", "member", "coupon")
    date_hierarchy = "completed_at"


@admin.register(MemberBadge)
class MemberBadgeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("badge", "member", "challenge", "earned_at")
    list_filter = ("badge",)
    search_fields = ("member__member_number",)
    list_select_related = ("badge", "member", "challenge")
