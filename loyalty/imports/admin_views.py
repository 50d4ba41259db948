"""The admin's "Import opening balances" page (Support and Marketing): upload the CSV of a
program being migrated, check it (every row, nothing written while any is bad), then credit it
through ``opening_balances_import`` as the staff user, audited. Mounted in loyalty/urls.py."""

from __future__ import annotations

import io

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from loyalty.core.errors import ApplicationError
from loyalty.imports.opening_balances import opening_balances_import, opening_balances_rows
from loyalty.ledger.models import Program
from loyalty.ledger.selectors import program_default

PERMISSION = "activity.importbalances_staffjob"
MAX_BYTES = 20 * 1024 * 1024


class OpeningBalancesForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="A header row with member_number or email, points (whole, more than 0), and optionally "
        "expires_on (YYYY-MM-DD) and reason.",
    )
    program = forms.ModelChoiceField(
        queryset=Program.objects.order_by("name"), required=False, help_text="Empty: the default program."
    )
    check_only = forms.BooleanField(required=False, label="Only check the file (credit nothing)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        default = Program.objects.filter(is_default=True).first()
        if default is not None:
            self.fields["program"].initial = default.pk

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text (save it as CSV UTF-8).") from None
        try:
            self.rows = opening_balances_rows(io.StringIO(text, newline=""))
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from None
        except Exception:  # noqa: BLE001 - a broken CSV is a form error, not a 500
            raise forms.ValidationError("The file cannot be read as CSV.") from None
        return upload


def opening_balances_view(request):
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    form = OpeningBalancesForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        check_only = form.cleaned_data["check_only"]
        try:
            report = opening_balances_import(
                rows=form.rows,
                program=form.cleaned_data["program"] or program_default(),
                dry_run=check_only,
                actor=request.user,
                filename=form.cleaned_data["file"].name,
            )
        except ApplicationError as exc:
            form.add_error(None, f"{exc.message} ({exc.code})")
        else:
            if report.errors:
                messages.error(request, f"{len(report.errors)} row(s) are wrong: nothing was credited.")
            elif check_only:
                messages.info(request, f"All {report.rows} rows are good. Nothing was credited (check only).")
            else:
                messages.success(
                    request,
                    f"Credited {report.points} points in {report.credited} row(s); "
                    f"{report.repeated} row(s) were already imported.",
                )
    context = {
        **admin.site.each_context(request),
        "title": "Import opening balances",
        "form": form,
        "report": report,
    }
    return TemplateResponse(request, "admin/imports/opening_balances.html", context)
