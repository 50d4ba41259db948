"""Segments in the admin: a rule builder with a live count and sample, CSV upload for static
lists, refresh and snapshot actions, size history and composition; scores read-only.
Every change goes through ``segments.services``."""

from __future__ import annotations

import csv
import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseNotAllowed, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, json_script
from django.utils.safestring import mark_safe
from django.utils.text import slugify

from loyalty.core.admin import ReadOnlyAdminMixin
from loyalty.core.errors import ApplicationError
from segments import rules as R
from segments import selectors, services
from segments.models import (
    MemberScore,
    ScoreRun,
    Segment,
    SegmentKind,
    SegmentMembership,
    SegmentRefresh,
    SegmentUpload,
)
from segments.services.segments import EDITABLE_FIELDS

CATALOGUE_ID = "segment-rule-catalogue"
PREDICTED_FIELDS = ("score.predicted_clv", "score.predicted_purchases", "score.probability_alive")


class RuleBuilderWidget(forms.Textarea):
    """The JSON textarea plus the builder that edits it (segments/rule_builder.js)."""

    def __init__(self, *args, catalogue: dict[str, Any] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.catalogue = catalogue or R.catalogue()

    class Media:
        js = ("segments/rule_builder.js",)
        css = {"all": ("segments/rule_builder.css",)}

    def render(self, name, value, attrs=None, renderer=None):
        attrs = {**(attrs or {}), "data-rule-builder": "1", "data-catalogue": CATALOGUE_ID}
        return mark_safe(json_script(self.catalogue, CATALOGUE_ID) + super().render(name, value, attrs, renderer))  # noqa: S308


def builder_catalogue(exclude: Segment | None = None) -> dict[str, Any]:
    """The field catalogue with choices the builder can offer: segments by name, tiers of the
    default program, and values found in the data (demographics, categories) as suggestions."""
    catalogue = R.catalogue()
    segments = Segment.objects.exclude(pk=exclude.pk if exclude else None).order_by("name").values_list("pk", "name")
    tiers = _default_program_tiers()
    suggestions = selectors.rule_value_suggestions()
    basis = selectors.score_run_basis(selectors.score_run_latest())
    for spec in catalogue["fields"]:
        if spec["name"] in PREDICTED_FIELDS and basis["basis"] != "model" and basis["explanation"]:
            spec["help"] = " ".join(filter(None, [spec.get("help"), basis["explanation"]]))
        if spec["name"] == "segment":
            spec["choices"] = [[pk, name] for pk, name in segments]
        elif spec["name"] == "loyalty.tier" and tiers:
            spec["choices"] = [[t, t] for t in tiers]
        spec["suggestions"] = suggestions.get(spec["name"], [])
        for param in spec["params"]:
            param["suggestions"] = suggestions.get(param["name"], [])
    return catalogue


def _default_program_tiers() -> list[str]:
    from loyalty.ledger.models import Program
    from loyalty.tiers.models import Tier

    program = Program.objects.filter(is_default=True).first()
    if program is None:
        return []
    return list(Tier.objects.filter(program=program).order_by("rank").values_list("name", flat=True))


class SegmentAdminForm(forms.ModelForm):
    rules = forms.JSONField(required=False, widget=RuleBuilderWidget)
    upload = forms.FileField(
        required=False,
        help_text="CSV of member numbers or external ids (a header row 'member_number' or 'external_id' is "
        "recognized; otherwise the first column is used). Unknown ids are reported.",
    )
    upload_mode = forms.ChoiceField(
        choices=[("replace", "Replace the list"), ("add", "Add to the list")], initial="replace", required=False
    )

    class Meta:
        model = Segment
        fields = ("name", "description", "kind", "rules", "auto_refresh")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "kind" in self.fields:
            self.fields["kind"].choices = [
                (SegmentKind.DYNAMIC, SegmentKind.DYNAMIC.label),
                (SegmentKind.STATIC, SegmentKind.STATIC.label),
            ]

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind") or self.instance.kind
        if kind == SegmentKind.DYNAMIC and "rules" in self.fields:
            rules = cleaned.get("rules")
            if rules in (None, ""):
                self.add_error("rules", "A dynamic segment needs rules.")
            else:
                try:
                    cleaned["rules"] = selectors.rules_validate(
                        rules=rules, segment=self.instance if self.instance.pk else None
                    )
                except ApplicationError as exc:
                    self.add_error("rules", exc.fields.get("rules") or [f"{exc.message} ({exc.code})"])
        elif kind != SegmentKind.DYNAMIC:
            cleaned["rules"] = None
        if cleaned.get("upload") and kind != SegmentKind.STATIC:
            self.add_error("upload", "Only static segments take an uploaded list.")
        return cleaned


class RefreshInline(admin.TabularInline):
    model = SegmentRefresh
    fields = ("refreshed_at", "trigger", "size", "entered", "left", "duration_ms")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = "Refresh history"
    ordering = ("-refreshed_at", "-id")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        latest = list(queryset.order_by("-refreshed_at", "-id").values_list("pk", flat=True)[:20])
        return queryset.filter(pk__in=latest)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class UploadInline(admin.TabularInline):
    model = SegmentUpload
    fields = ("uploaded_at", "filename", "mode", "rows", "matched", "unknown", "unknown_sample", "uploaded_by")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = "Upload reports"

    @admin.display(description="Unknown ids (first 20)")
    def unknown_sample(self, obj):
        ids = obj.unknown_ids[:20]
        return ", ".join(ids) + (" …" if obj.unknown > len(ids) else "") if ids else "-"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentAdminForm
    list_display = ("name", "kind", "size", "last_refreshed_at", "auto_refresh", "rules_summary")
    list_filter = ("kind", "auto_refresh")
    search_fields = ("name", "description")
    actions = ["refresh_segments", "snapshot_segments", "export_members_csv"]

    def get_fieldsets(self, request, obj=None):
        kind = obj.kind if obj else None
        main = ["name", "description"] + (["kind"] if obj is None else ["kind_display"])
        fieldsets = [(None, {"fields": main})]
        if kind in (None, SegmentKind.DYNAMIC):
            fieldsets.append(
                (
                    "Rules",
                    {
                        "fields": (["rules_summary"] if obj is not None else []) + ["rules", "auto_refresh"],
                        "description": "Build the rules with the groups and conditions below; the count and the "
                        "sample of matching members update as you edit. The segment is refreshed when saved.",
                    },
                )
            )
        if kind in (None, SegmentKind.STATIC):
            fieldsets.append(("Uploaded list (static segments)", {"fields": ["upload", "upload_mode"]}))
        if obj is not None:
            state = ["size", "last_refreshed_at", "size_chart", "composition_link", "created_at", "created_by"]
            if kind == SegmentKind.SNAPSHOT:
                state[:0] = ["source", "frozen_at", "rules_summary"]
            fieldsets.append(("Membership", {"fields": state}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        fields = ["kind_display", "size", "last_refreshed_at", "size_chart", "composition_link", "created_at"]
        fields += ["created_by", "source", "frozen_at", "rules_summary"]
        return fields

    def get_inlines(self, request, obj):
        if obj is None:
            return []
        return [RefreshInline, UploadInline] if obj.kind == SegmentKind.STATIC else [RefreshInline]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "rules" in form.base_fields:
            widget = RuleBuilderWidget(catalogue=builder_catalogue(exclude=obj))
            widget.attrs.update(
                {
                    "data-preview-url": reverse("admin:segments_segment_preview"),
                    "data-segment-id": obj.pk if obj else "",
                }
            )
            form.base_fields["rules"].widget = widget
        return form

    def get_urls(self):
        urls = [
            path("preview/", self.admin_site.admin_view(self.preview_view), name="segments_segment_preview"),
            path(
                "<int:pk>/composition/",
                self.admin_site.admin_view(self.composition_view),
                name="segments_segment_composition",
            ),
        ]
        return urls + super().get_urls()

    # -- display ---------------------------------------------------------------------------------
    @admin.display(description="Kind")
    def kind_display(self, obj):
        return obj.get_kind_display()

    @admin.display(description="Rules in words")
    def rules_summary(self, obj):
        if not obj.rules:
            return "-"
        try:
            return selectors.rules_words(obj.rules)
        except (KeyError, TypeError, AttributeError, IndexError):
            return json.dumps(obj.rules)

    @admin.display(description="Size over time")
    def size_chart(self, obj):
        history = selectors.segment_size_history(segment=obj)[-120:]
        if len(history) < 2:
            return f"{len(history)} refresh(es) so far"
        width, height = 480, 80
        top = max(point["size"] for point in history) or 1
        step = width / (len(history) - 1)
        points = " ".join(
            f"{i * step:.1f},{height - point['size'] / top * (height - 4) - 2:.1f}" for i, point in enumerate(history)
        )
        return format_html(
            '<svg class="segment-size-chart" width="{}" height="{}" viewBox="0 0 {} {}" role="img">'
            '<polyline points="{}"/></svg><div class="help">{} → {} members, {} to {} (max {})</div>',
            width,
            height,
            width,
            height,
            points,
            history[0]["size"],
            history[-1]["size"],
            f"{history[0]['at']:%Y-%m-%d}",
            f"{history[-1]['at']:%Y-%m-%d}",
            top,
        )

    @admin.display(description="Composition")
    def composition_link(self, obj):
        url = reverse("admin:segments_segment_composition", args=[obj.pk])
        return format_html('<a href="{}">Tier mix, demographics, RFM mix and spend share</a>', url)

    # -- saving ----------------------------------------------------------------------------------
    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            changes = {f: data[f] for f in form.changed_data if f in EDITABLE_FIELDS}
            saved = services.segment_update(segment=obj, actor=request.user, **changes) if changes else obj
        else:
            saved = services.segment_create(
                name=data["name"],
                kind=data["kind"],
                description=data.get("description", ""),
                rules=data.get("rules"),
                auto_refresh=data.get("auto_refresh", True),
                actor=request.user,
            )
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if not k.startswith("_")})
        upload = data.get("upload")
        if upload:
            report = services.segment_static_upload(
                segment=saved,
                content=upload.read(),
                filename=upload.name,
                mode=data.get("upload_mode") or "replace",
                actor=request.user,
            )
            level = messages.WARNING if report.unknown else messages.SUCCESS
            unknown = f"; unknown ids: {', '.join(report.unknown_ids[:10])}" if report.unknown else ""
            self.message_user(
                request,
                f"Uploaded {report.rows} ids: {report.matched} matched, {report.unknown} unknown{unknown}. "
                f"The list now has {report.refresh.size if report.refresh else saved.size} members.",
                level,
            )
        if saved.kind == SegmentKind.DYNAMIC and (not change or "rules" in form.changed_data):
            from segments import tasks

            transaction.on_commit(lambda: tasks.refresh_segment.delay(saved.pk))
            self.message_user(request, "The segment is being refreshed with its rules.", messages.INFO)

    def delete_model(self, request, obj):
        services.segment_delete(segment=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for segment in queryset:
            try:
                services.segment_delete(segment=segment, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{segment}: {exc.message} ({exc.code})", messages.ERROR)

    def delete_view(self, request, object_id, extra_context=None):
        segment = self.get_object(request, object_id)
        if segment is not None:
            users = selectors.segments_referring_to(segment=segment)
            if users:
                self.message_user(
                    request,
                    f"'{segment}' cannot be deleted: the rules of {', '.join(s.name for s in users)} use it.",
                    messages.ERROR,
                )
                return redirect(reverse("admin:segments_segment_change", args=[segment.pk]))
        return super().delete_view(request, object_id, extra_context)

    # -- actions ---------------------------------------------------------------------------------
    @admin.action(description="Refresh selected dynamic segments now", permissions=("change",))
    def refresh_segments(self, request, queryset):
        for segment in queryset:
            try:
                refresh = services.segment_refresh(segment=segment)
            except ApplicationError as exc:
                self.message_user(request, f"{segment}: {exc.message} ({exc.code})", messages.ERROR)
                continue
            self.message_user(
                request,
                f"{segment}: {refresh.size} members (+{refresh.entered} entered, -{refresh.left} left) "
                f"in {refresh.duration_ms} ms.",
                messages.SUCCESS,
            )

    @admin.action(description="Freeze selected dynamic segments as snapshots", permissions=("add",))
    def snapshot_segments(self, request, queryset):
        for segment in queryset:
            try:
                snapshot = services.segment_snapshot_create(segment=segment, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{segment}: {exc.message} ({exc.code})", messages.ERROR)
                continue
            self.message_user(request, f"Snapshot '{snapshot}' holds {snapshot.size} members.", messages.SUCCESS)

    def has_export_permission(self, request) -> bool:
        """Exporting a segment's members hands out personal data: view on segments and on members."""
        return request.user.has_perm("segments.view_segment") and request.user.has_perm("members.view_member")

    @admin.action(description="Export the members of the selected segment (CSV)", permissions=("export",))
    def export_members_csv(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one segment to export.", messages.WARNING)
            return None
        segment = queryset.get()
        rows = services.segment_members_export(segment=segment, actor=request.user)

        class Echo:
            def write(self, value):
                return value

        writer = csv.writer(Echo())
        response = StreamingHttpResponse((writer.writerow(row) for row in rows), content_type="text/csv")
        name = slugify(segment.name) or f"segment-{segment.pk}"
        response["Content-Disposition"] = f'attachment; filename="{name}-members.csv"'
        return response

    # -- views -----------------------------------------------------------------------------------
    def preview_view(self, request):
        """POST rules (JSON) -> {count, sample, description} or {errors}: the live preview."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            rules = json.loads(request.POST.get("rules") or "null")
        except ValueError:
            return JsonResponse({"errors": ["The rules are not valid JSON."]})
        segment_id = request.POST.get("segment") or ""
        segment = Segment.objects.filter(pk=int(segment_id)).first() if segment_id.isdigit() else None
        rules, incomplete = R.incomplete_dropped(rules)  # a new, empty row is not an error yet
        try:
            data = selectors.segment_preview(rules=rules, segment=segment)
        except ApplicationError as exc:
            return JsonResponse({"errors": exc.fields.get("rules") or [f"{exc.message} ({exc.code})"]})
        data["incomplete"] = incomplete
        for row in data["sample"]:
            row["name"] = f"{row.pop('first_name')} {row.pop('last_name')}".strip()
            row["url"] = reverse("admin:members_member_change", args=[row["id"]])
        return JsonResponse(data)

    def composition_view(self, request, pk: int):
        segment = get_object_or_404(Segment, pk=pk)
        if not self.has_view_permission(request, segment):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": f"Composition of {segment}",
            "segment": segment,
            "composition": selectors.segment_composition(segment=segment),
            "opts": self.model._meta,
            "original": segment,
        }
        return TemplateResponse(request, "admin/segments/segment/composition.html", context)


@admin.register(SegmentMembership)
class SegmentMembershipAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("segment", "member", "entered_at", "left_at")
    list_filter = ("segment", ("left_at", admin.EmptyFieldListFilter))
    search_fields = ("=member__member_number", "segment__name")
    list_select_related = ("segment", "member")
    raw_id_fields = ("member",)


@admin.register(MemberScore)
class MemberScoreAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "member",
        "rfm_segment",
        "r_score",
        "f_score",
        "m_score",
        "recency_days",
        "frequency",
        "monetary",
        "predicted_purchases",
        "probability_alive",
        "predicted_clv",
        "computed_on",
    )
    list_filter = ("rfm_segment", "r_score", "f_score", "m_score")
    search_fields = ("=member__member_number",)
    list_select_related = ("member",)


@admin.register(ScoreRun)
class ScoreRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "as_of",
        "window_days",
        "horizon_days",
        "members_scored",
        "clv_basis",
        "degenerate",
        "fit_members",
        "fit_log_likelihood",
        "started_at",
        "finished_at",
        "note",
    )
    list_filter = ("degenerate", "clv_basis")
    readonly_fields = ("bgnbd", "gamma_gamma", "timings")
    change_list_template = "admin/segments/scorerun/change_list.html"

    def get_urls(self):
        compute = path("compute/", self.admin_site.admin_view(self.compute_view), name="segments_scorerun_compute")
        return [compute, *super().get_urls()]

    def can_compute(self, request) -> bool:
        """Staff who manage segments may score the base now (the nightly job does it anyway)."""
        return request.user.has_perm("segments.change_segment")

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_compute": self.can_compute(request)}
        return super().changelist_view(request, extra_context)

    def compute_view(self, request):
        """POST: score every member now (audited as ``scores.compute``), back to the list."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.can_compute(request):
            raise PermissionDenied
        try:
            run = services.scores_compute(actor=request.user)
        except ApplicationError as exc:
            self.message_user(request, f"{exc.message} ({exc.code})", messages.ERROR)
        else:
            level = messages.WARNING if run.degenerate or run.clv_basis != "model" else messages.SUCCESS
            self.message_user(
                request,
                f"Scored {run.members_scored} members. {selectors.score_run_basis(run)['explanation']}",
                level,
            )
        return redirect(reverse("admin:segments_scorerun_changelist"))
