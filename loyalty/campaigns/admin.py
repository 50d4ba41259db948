"""Campaigns in the admin (Marketing designs and launches; Support and Analyst read): the campaign
with its variants, launch / schedule / unschedule / finish / cancel actions (``launch_campaign``),
the results page per campaign (per arm figures, uplift against the holdout with 95% intervals,
an SVG chart, CSV export) and the holdout sample-size helper. Every write goes through
``campaigns.services.campaigns`` (audited)."""

from __future__ import annotations

import csv

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from loyalty.campaigns import results as campaign_results
from loyalty.campaigns.models import HOLDOUT, Campaign, CampaignRun, CampaignStatus, Variant
from loyalty.campaigns.selectors.attribution import arm_sizes, campaign_arms
from loyalty.campaigns.services import campaigns as services
from loyalty.campaigns.stats import StatisticsInputError
from loyalty.core.admin import DeleteEachAdminMixin
from loyalty.core.errors import ApplicationError
from loyalty.messaging.models import Channel, Purpose

EDITABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)


class CampaignForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(choices=Channel.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Campaign
        fields = (
            "program",
            "name",
            "goal",
            "segments_include",
            "segments_exclude",
            "offers",
            "rewards",
            "content",
            "channels",
            "starts_at",
            "ends_at",
            "send_time",
            "recurrence",
            "frequency_cap",
            "frequency_cap_days",
            "attribution_days",
            "holdout_percent",
        )

    def clean(self):
        """The service's checks, as errors on their fields."""
        data = super().clean()
        if self.errors:
            return data
        probe = Campaign(**{k: v for k, v in data.items() if k in {f.name for f in Campaign._meta.concrete_fields}})
        probe.channels = list(data.get("channels") or [])
        content = data.get("content")
        if content is not None and content.purpose != Purpose.MARKETING:
            self.add_error("content", "Campaigns send marketing content; this one is a service message.")
        try:
            services.campaign_validate(probe)
        except ApplicationError as exc:
            for field, errors in (exc.fields or {"__all__": [exc.message]}).items():
                self.add_error(field if field in self.fields else None, errors)
        return data


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    fields = ("name", "weight", "content")

    def _editable(self, obj) -> bool:
        return obj is None or obj.status in EDITABLE

    def has_add_permission(self, request, obj=None):
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(obj) and super().has_delete_permission(request, obj)


class CampaignRunInline(admin.TabularInline):
    model = CampaignRun
    extra = 0
    fields = readonly_fields = ("number", "ran_at", "queued", "capped")
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _each(modeladmin, request, queryset, change, done: str) -> None:
    changed = 0
    for campaign in queryset:
        try:
            change(campaign=campaign, actor=request.user, reason="admin")
            changed += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{campaign}: {exc.message}", messages.WARNING)
    if changed:
        modeladmin.message_user(request, f"{changed} campaign(s) {done}.", messages.SUCCESS)


@admin.register(Campaign)
class CampaignAdmin(DeleteEachAdminMixin, admin.ModelAdmin):
    form = CampaignForm
    inlines = (VariantInline, CampaignRunInline)
    list_display = ("name", "program", "status", "starts_at", "launched_at", "audience_size", "runs_done", "results")
    list_filter = ("status", "program", "recurrence")
    search_fields = ("name",)
    list_select_related = ("program",)
    filter_horizontal = ("segments_include", "segments_exclude", "offers", "rewards")
    actions = (
        "launch_campaigns",
        "schedule_campaigns",
        "unschedule_campaigns",
        "finish_campaigns",
        "cancel_campaigns",
    )
    fieldsets = (
        (None, {"fields": ("program", "name", "goal", "status")}),
        ("Audience (snapshot at launch)", {"fields": ("segments_include", "segments_exclude")}),
        ("What it promotes and sends", {"fields": ("offers", "rewards", "content", "channels")}),
        ("When", {"fields": ("starts_at", "ends_at", "send_time", "recurrence", "next_run_at")}),
        (
            "Measurement",
            {"fields": ("holdout_percent", "attribution_days", "frequency_cap", "frequency_cap_days", "sample_size")},
        ),
        ("Figures", {"fields": ("launched_at", "audience_size", "arms", "runs_done", "results")}),
    )
    readonly_fields = ("status", "next_run_at", "launched_at", "audience_size", "arms", "runs_done", "results")

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "sample_size"]

    def has_launch_permission(self, request) -> bool:
        return request.user.has_perm(services.LAUNCH_PERMISSION)

    def has_change_permission(self, request, obj=None):
        """A launched campaign is read-only: its audience, arms and content are what its results are about."""
        if obj is not None and obj.status not in EDITABLE:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.status != CampaignStatus.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description="Results")
    def results(self, obj: Campaign) -> str:
        if obj.pk is None or obj.launched_at is None:
            return "After the launch"
        return format_html('<a href="{}">Results</a>', reverse("admin:campaigns_campaign_results", args=[obj.pk]))

    @admin.display(description="Arms")
    def arms(self, obj: Campaign) -> str:
        if obj.pk is None:
            return "-"
        treated = services.campaign_arms(obj)
        names = [a.name for a in treated]
        if obj.launched_at is None:
            return f"{', '.join(names)} and the holdout ({obj.holdout_percent}%): members are assigned at launch"
        sizes = arm_sizes(obj)
        rows = [(HOLDOUT, f"{obj.holdout_percent}%", sizes.get(HOLDOUT, 0))]
        rows += [(a.name, f"weight {a.weight}", sizes.get(a.name, 0)) for a in treated]
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}: {}, {} member(s)</li>", rows))

    @admin.display(description="Holdout size")
    def sample_size(self, obj: Campaign) -> str:
        return format_html(
            '<a href="{}">How many members the holdout needs</a> (before launching)',
            reverse("admin:campaigns_campaign_sample_size"),
        )

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        services.campaign_save(campaign=obj, actor=request.user, reason="admin")

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if any(formset.has_changed() for formset in formsets):
            services.campaign_variants_record(campaign=form.instance, actor=request.user, reason="admin")

    def delete_model(self, request, obj):
        services.campaign_delete(campaign=obj, actor=request.user, reason="admin")

    @admin.action(description="Launch now", permissions=["launch"])
    def launch_campaigns(self, request, queryset):
        _each(self, request, queryset, services.campaign_launch, "launched")

    @admin.action(description="Schedule (launch at the start)", permissions=["launch"])
    def schedule_campaigns(self, request, queryset):
        _each(self, request, queryset, services.campaign_schedule, "scheduled")

    @admin.action(description="Back to draft (unschedule)", permissions=["launch"])
    def unschedule_campaigns(self, request, queryset):
        _each(self, request, queryset, services.campaign_unschedule, "back to draft")

    @admin.action(description="Finish", permissions=["launch"])
    def finish_campaigns(self, request, queryset):
        _each(self, request, queryset, services.campaign_finish, "finished")

    @admin.action(description="Cancel", permissions=["launch"])
    def cancel_campaigns(self, request, queryset):
        _each(self, request, queryset, services.campaign_cancel, "cancelled")

    # ---- results and the sample-size helper ----------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/results/", view(self.results_view), name="campaigns_campaign_results"),
            path("<int:pk>/results.csv", view(self.results_csv_view), name="campaigns_campaign_results_csv"),
            path("sample-size/", view(self.sample_size_view), name="campaigns_campaign_sample_size"),
            *super().get_urls(),
        ]

    def _results(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        campaign = get_object_or_404(Campaign.objects.select_related("program"), pk=pk)
        try:
            results = campaign_results.campaign_results(campaign_arms(campaign))
        except StatisticsInputError as exc:
            return campaign, None, str(exc)
        return campaign, results, ""

    def results_view(self, request, pk: int):
        campaign, results, error = self._results(request, pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Results: {campaign.name}",
            "opts": self.model._meta,
            "campaign": campaign,
            "results": results,
            "error": error,
            "arms": [_arm_row(arm) for arm in results.arms] if results else [],
            "comparisons": [_comparison_row(c) for c in results.comparisons] if results else [],
            "confidence": f"{results.confidence:.0%}" if results else "",
            "chart": mark_safe(campaign_results.results_chart_svg(results, title=campaign.name)) if results else "",  # noqa: S308 - the chart escapes every text
        }
        return TemplateResponse(request, "admin/campaigns/results.html", context)

    def results_csv_view(self, request, pk: int):
        campaign, results, error = self._results(request, pk)
        if results is None:
            return HttpResponse(error, status=409, content_type="text/plain; charset=utf-8")
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-results.csv"'
        csv.writer(response).writerows(campaign_results.results_csv_rows(results))
        return response

    def sample_size_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = SampleSizeForm(request.GET or None)
        needed = None
        if form.is_valid():
            try:
                needed = campaign_results.holdout_sample_size(**form.cleaned_data)
            except (StatisticsInputError, ValueError) as exc:
                form.add_error(None, str(exc))
        context = {
            **self.admin_site.each_context(request),
            "title": "Holdout size needed",
            "opts": self.model._meta,
            "form": form,
            "needed": needed,
        }
        return TemplateResponse(request, "admin/campaigns/sample_size.html", context)


def _pct(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value * 100:+.2f} points" if signed else f"{value * 100:.2f}%"


def _interval(interval, scale: float = 1, unit: str = "") -> str:
    if interval is None:
        return "–"
    return f"{interval.low * scale:+.2f}{unit} to {interval.high * scale:+.2f}{unit}"


def _money(value) -> str:
    return "–" if value is None else f"{value:,.2f}"


def _arm_row(arm: campaign_results.ArmResult) -> dict[str, str | int]:
    return {
        "name": "Holdout (received nothing)" if arm.is_holdout else arm.name,
        "reach": arm.reach,
        "delivered": arm.delivered,
        "opened": arm.opened,
        "clicked": arm.clicked,
        "converted": arm.converted,
        "rate": _pct(arm.conversion_rate),
        "revenue": _money(arm.revenue),
        "per_member": _money(arm.revenue_per_member),
        "points_cost": _money(arm.points_cost),
        "reward_cost": _money(arm.reward_cost),
        "message_cost": _money(arm.message_cost),
    }


def _comparison_row(c: campaign_results.Comparison) -> dict[str, str]:
    return {
        "variant": c.variant,
        "uplift": _pct(c.conversion_diff, signed=True),
        "uplift_ci": _interval(c.conversion_ci, 100, " points"),
        "uplift_p": "–" if c.conversion_p is None else f"{c.conversion_p:.3g}",
        "revenue": "–" if c.revenue_per_member_diff is None else f"{c.revenue_per_member_diff:+,.2f}",
        "revenue_ci": _interval(c.revenue_ci),
        "bootstrap_ci": _interval(c.revenue_bootstrap_ci),
        "revenue_p": "–" if c.revenue_p is None else f"{c.revenue_p:.3g}",
        "incremental": _money(c.incremental_revenue),
        "cost": _money(c.cost),
        "roi": _money(c.roi),
        "roi_ratio": "–" if c.roi_ratio is None else f"{c.roi_ratio:.0%}",
        "notes": " ".join(c.notes),
    }


class SampleSizeForm(forms.Form):
    baseline_rate = forms.FloatField(
        min_value=0.0001, max_value=0.9999, initial=0.05, help_text="Share of members who buy without the campaign"
    )
    min_uplift = forms.FloatField(
        min_value=0.0001, max_value=0.9999, initial=0.01, help_text="Smallest rise to detect (0.01 = one point)"
    )
    power = forms.FloatField(min_value=0.5, max_value=0.999, initial=0.8)
    alpha = forms.FloatField(min_value=0.0001, max_value=0.5, initial=0.05, help_text="0.05 for 95% confidence")
