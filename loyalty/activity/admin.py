from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from loyalty.activity.models import EarningRule, EventRule, EventType, MemberEvent, StaffJob
from loyalty.activity.services import jobs, rule_config
from loyalty.core.admin import DeleteEachAdminMixin, ReadOnlyAdminMixin
from loyalty.core.errors import ApplicationError


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


@admin.register(StaffJob)
class StaffJobAdmin(admin.ModelAdmin):
    """The "Jobs" page: the scheduled jobs, each with a "Run now" button for the roles allowed to
    run it. Inline without a Celery broker (the demo), queued for the workers with one; audited."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        run = path("run/<str:name>/", self.admin_site.admin_view(self.run_view), name="activity_staffjob_run")
        return [run, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = [
            {
                "name": spec.name,
                "label": spec.label,
                "what": spec.what,
                "can_run": request.user.has_perm(spec.permission),
                "url": reverse("admin:activity_staffjob_run", args=[spec.name]),
            }
            for spec in jobs.JOBS.values()
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Jobs: run now",
            "jobs": rows,
            "inline": settings.CELERY_TASK_ALWAYS_EAGER,
            "can_import": request.user.has_perm("activity.importbalances_staffjob"),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/activity/staffjob/jobs.html", context)

    def run_view(self, request, name: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        spec = jobs.JOBS.get(name)
        if spec is None:
            self.message_user(request, f"There is no job '{name}'.", messages.ERROR)
            return redirect(reverse("admin:activity_staffjob_changelist"))
        if not request.user.has_perm(spec.permission):
            raise PermissionDenied
        try:
            if settings.CELERY_TASK_ALWAYS_EAGER:
                result = jobs.staff_job_run(name=name, actor=request.user)
                done = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result.items()) or "nothing to do"
                self.message_user(request, f"{spec.label}: done ({done}).", messages.SUCCESS)
            else:
                from celery import current_app

                current_app.send_task(spec.task)
                jobs.staff_job_queued(name=name, actor=request.user)
                self.message_user(request, f"{spec.label}: queued for the workers.", messages.SUCCESS)
        except ApplicationError as exc:
            self.message_user(request, f"{spec.label}: {exc.message} ({exc.code})", messages.ERROR)
        return redirect(reverse("admin:activity_staffjob_changelist"))
