from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from loyalty.activity.models import EarningRule, EventRule, EventType, MemberEvent, RuleKind, StaffJob
from loyalty.activity.services import jobs, rule_config
from loyalty.celery import app as celery_app
from loyalty.core.admin import DeleteEachAdminMixin, ReadOnlyAdminMixin
from loyalty.core.errors import ApplicationError
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger.models import Program


class _OpenMultipleChoice(forms.MultipleChoiceField):
    """Offers the catalogue, accepts any non-empty text (a category or SKU not sold yet)."""

    def valid_value(self, value):
        return bool(str(value).strip()) and len(str(value)) <= 100


def _picker(name: str, values: list[str], current: list[str]) -> forms.MultipleChoiceField:
    choices = [(v, v) for v in dict.fromkeys([*current, *values])]
    return _OpenMultipleChoice(choices=choices, required=False, widget=FilteredSelectMultiple(name, is_stacked=False))


class EarningRuleForm(forms.ModelForm):
    """Categories and SKUs picked from what purchases contain (the most bought first), plus SKUs not
    sold yet typed in; no JSON lists to write."""

    more_categories = forms.CharField(
        required=False, label="Other categories", help_text="Categories not sold yet, separated by commas."
    )
    more_skus = forms.CharField(required=False, label="Other SKUs", help_text="SKUs not sold yet, separated by commas.")

    class Meta:
        model = EarningRule
        fields = "__all__"  # noqa: DJ007 - the admin fieldsets decide what is shown

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        catalogue = ledger_selectors.purchase_catalogue()
        self.fields["categories"] = _picker("categories", catalogue["category"], list(self.instance.categories or []))
        self.fields["skus"] = _picker("SKUs", catalogue["sku"], list(self.instance.skus or []))
        self.fields["categories"].help_text = "Categories seen in purchases, most bought first."
        self.fields["skus"].help_text = "The 500 most bought SKUs; others below."
        self.fields["categories"].label, self.fields["skus"].label = "Categories", "SKUs"
        if self.instance.pk is None and "program" in self.fields:
            default = Program.objects.filter(is_default=True).first()
            self.fields["program"].initial = default.pk if default else None

    def clean(self):
        cleaned = super().clean()
        extra = [s.strip() for s in (cleaned.get("more_skus") or "").split(",") if s.strip()]
        cleaned["skus"] = sorted({*(cleaned.get("skus") or []), *extra})
        extra = [s.strip() for s in (cleaned.get("more_categories") or "").split(",") if s.strip()]
        cleaned["categories"] = sorted({*(cleaned.get("categories") or []), *extra})
        kind = cleaned.get("kind")
        if (
            kind in (RuleKind.CATEGORY_MULTIPLIER, RuleKind.CATEGORY_BONUS, RuleKind.EXCLUDE_CATEGORIES)
            and not cleaned["categories"]
        ):
            self.add_error("categories", "Pick at least one category for this kind of rule.")
        if kind in (RuleKind.SKU_MULTIPLIER, RuleKind.SKU_BONUS) and not cleaned["skus"]:
            self.add_error("skus", "Pick or type at least one SKU for this kind of rule.")
        return cleaned

    def save(self, commit=True):
        self.instance.categories = self.cleaned_data["categories"]
        self.instance.skus = self.cleaned_data["skus"]
        return super().save(commit)


@admin.register(EarningRule)
class EarningRuleAdmin(DeleteEachAdminMixin, admin.ModelAdmin):
    form = EarningRuleForm
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
        ("What it applies to", {"fields": ("categories", "more_categories", "skus", "more_skus", "min_spend")}),
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


def _inline() -> bool:
    """Without a broker (no REDIS_URL) Celery runs tasks eagerly: the job runs in the request."""
    return bool(celery_app.conf.task_always_eager)


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
            "inline": _inline(),
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
            if _inline():
                result = jobs.staff_job_run(name=name, actor=request.user)
                done = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result.items()) or "nothing to do"
                self.message_user(request, f"{spec.label}: done ({done}).", messages.SUCCESS)
            else:
                celery_app.send_task(spec.task)
                jobs.staff_job_queued(name=name, actor=request.user)
                self.message_user(request, f"{spec.label}: queued for the workers.", messages.SUCCESS)
        except ApplicationError as exc:
            self.message_user(request, f"{spec.label}: {exc.message} ({exc.code})", messages.ERROR)
        return redirect(reverse("admin:activity_staffjob_changelist"))
