"""The dashboards' filters: program, partner, date range (and segments to compare)."""

from __future__ import annotations

import datetime as dt

from django import forms

from loyalty.core import clock
from loyalty.dashboards.selectors.base import Filters
from loyalty.ledger.models import Program
from loyalty.partners.models import Partner

MAX_DAYS = 3 * 366


def default_range(today: dt.date) -> tuple[dt.date, dt.date]:
    """The last twelve months: from the first day of the month eleven months ago to today."""
    month = today.replace(day=1)
    for _ in range(11):
        month = (month - dt.timedelta(days=1)).replace(day=1)
    return month, today


class FiltersForm(forms.Form):
    program = forms.ModelChoiceField(Program.objects.order_by("-is_default", "name"), required=False, empty_label=None)
    partner = forms.ModelChoiceField(
        Partner.objects.order_by("name"), required=False, empty_label="Every partner", label="Partner"
    )
    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data=None, *args, **kwargs):
        if data is not None and not (data.get("start") or data.get("end")):
            # the page shows the range it reports on: the default twelve months, filled in
            data = data.copy()
            start, end = default_range(clock.today())
            data["start"], data["end"] = start.isoformat(), end.isoformat()
        super().__init__(data, *args, **kwargs)
        self.fields["program"].error_messages["invalid_choice"] = "Choose one of the programs in the list."
        self.fields["partner"].error_messages["invalid_choice"] = "Choose one of the partners in the list."

    def clean(self):
        data = super().clean()
        start, end = default_range(clock.today())
        data["start"] = data.get("start") or start
        data["end"] = data.get("end") or end
        if self.errors:
            return data
        if data["end"] < data["start"]:
            self.add_error("end", "The end of the range must not be before its start.")
        elif (data["end"] - data["start"]).days > MAX_DAYS:
            self.add_error("start", "Choose a range of at most three years.")
        if data.get("program") is None:
            data["program"] = Program.objects.filter(is_default=True).first() or Program.objects.order_by("pk").first()
            if data["program"] is None:
                self.add_error("program", "There is no program yet.")
        return data

    def filters(self) -> Filters:
        d = self.cleaned_data
        return Filters(program=d["program"], start=d["start"], end=d["end"], partner=d.get("partner"))


class SegmentsForm(FiltersForm):
    segments = forms.TypedMultipleChoiceField(
        coerce=int,
        required=False,
        label="Segments to compare (up to four)",
        widget=forms.SelectMultiple(attrs={"size": 5}),
    )

    def __init__(self, *args, segment_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segments"].choices = [(s.pk, f"{s.name} ({s.size:,})") for s in segment_choices]
        self.fields["segments"].error_messages["invalid_choice"] = "Choose segments from the list."

    def clean_segments(self):
        chosen = self.cleaned_data.get("segments") or []
        if len(chosen) > 4:
            raise forms.ValidationError("Choose at most four segments.")
        return chosen
