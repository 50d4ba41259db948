"""Surveys in the admin: Marketing builds them (ordered questions inline, targeting, window, reward);
everyone with view sees the results page and may download the answers as CSV."""

from __future__ import annotations

import csv

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from loyalty.core.errors import ApplicationError
from loyalty.engagement.models import Survey, SurveyQuestion, SurveyResponse
from loyalty.engagement.selectors.surveys import survey_results, survey_results_rows
from loyalty.engagement.services.surveys import question_check, survey_delete, survey_save


class QuestionForm(forms.ModelForm):
    choices = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 30}),
        help_text="One and several choices: one option per line",
    )

    class Meta:
        model = SurveyQuestion
        fields = ("position", "kind", "text", "choices", "required")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and isinstance(self.instance.choices, list):
            self.initial["choices"] = "\n".join(self.instance.choices)

    def clean_choices(self):
        return [line.strip() for line in (self.cleaned_data.get("choices") or "").splitlines() if line.strip()]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind"):
            try:
                question_check(kind=cleaned["kind"], choices=cleaned.get("choices") or [])
            except ApplicationError as error:
                self.add_error("choices", error.message)
        return cleaned


class QuestionInline(admin.TabularInline):
    model = SurveyQuestion
    form = QuestionForm
    extra = 1
    ordering = ("position", "id")

    def _answered(self, obj) -> bool:
        return obj is not None and SurveyResponse.objects.filter(survey=obj).exists()

    # once members answered, the questions stay as they were asked (results would mix meanings)
    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and not self._answered(obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not self._answered(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not self._answered(obj)


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    list_display = ("title", "program", "is_active", "valid_from", "valid_until", "reward_points", "results_link")
    list_filter = ("is_active", "program")
    search_fields = ("title",)
    filter_horizontal = ("segments", "tiers")
    readonly_fields = ("results_link", "portal_link", "created_at", "updated_at")
    fields = (
        "program",
        "title",
        "intro",
        "is_active",
        ("valid_from", "valid_until"),
        "segments",
        "tiers",
        "reward_points",
        "results_link",
        "portal_link",
        "created_at",
        "updated_at",
    )
    inlines = (QuestionInline,)
    actions = None  # no bulk delete: a delete is audited one by one

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:survey_id>/results/", view(self.results_view), name="engagement_survey_results"),
            path("<int:survey_id>/results.csv", view(self.results_csv), name="engagement_survey_results_csv"),
            *super().get_urls(),
        ]

    @admin.display(description="Results")
    def results_link(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        return format_html('<a href="{}">Results</a>', reverse("admin:engagement_survey_results", args=[obj.pk]))

    @admin.display(description="Link for campaigns")
    def portal_link(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        return reverse("portal:survey", args=[obj.pk])

    def save_model(self, request, obj, form, change):
        survey_save(survey=obj, actor=request.user, created=not change)

    def delete_model(self, request, obj):
        try:
            survey_delete(survey=obj, actor=request.user)
        except ApplicationError as error:
            self.message_user(request, error.message, messages.ERROR)

    def _survey_for_view(self, request, survey_id: int) -> Survey:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(Survey, pk=survey_id)

    def results_view(self, request, survey_id: int):
        survey = self._survey_for_view(request, survey_id)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Results: {survey.title}",
            "opts": self.model._meta,
            "survey": survey,
            "results": survey_results(survey=survey),
        }
        return TemplateResponse(request, "admin/engagement/survey_results.html", context)

    def results_csv(self, request, survey_id: int):
        survey = self._survey_for_view(request, survey_id)
        header, rows = survey_results_rows(survey=survey)
        response = StreamingHttpResponse(_csv_lines(header, rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="survey-{survey.pk}-answers.csv"'
        return response


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(header, rows):
    """CSV lines as they are written (streamed); a cell a spreadsheet would run as a formula is
    written as text."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([f"'{c}" if isinstance(c, str) and c[:1] in ("=", "+", "-", "@") else c for c in row])
