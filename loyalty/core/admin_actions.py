"""Admin actions that need a reason: an intermediate page asks for it, then each selected
object goes through the service. ApplicationErrors become messages, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from loyalty.core.errors import ApplicationError


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=1000)


def action_with_reason(
    *,
    service: Callable[..., Any],
    description: str,
    name: str,
    permissions: tuple[str, ...] = ("change",),
    form_class: type[forms.Form] = ReasonForm,
    target_kwarg: str = "member",
    describe: Callable[[Any], str] = str,
) -> Callable:
    """Build an admin action that asks for a reason (and any fields of ``form_class``) and
    calls ``service(<target_kwarg>=obj, actor=request.user, **form.cleaned_data)`` per object."""

    def action(modeladmin: admin.ModelAdmin, request, queryset):
        form = form_class(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            done, failed = 0, 0
            for obj in queryset:
                try:
                    service(**{target_kwarg: obj}, actor=request.user, **form.cleaned_data)
                    done += 1
                except ApplicationError as exc:
                    failed += 1
                    modeladmin.message_user(request, f"{obj}: {exc.message} ({exc.code})", messages.ERROR)
            if done:
                modeladmin.message_user(request, f"{description}: {done} done.", messages.SUCCESS)
            return None
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": description,
            "objects": [describe(obj) for obj in queryset],
            "object_ids": [obj.pk for obj in queryset],
            "form": form,
            "action_name": name,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": modeladmin.model._meta,
        }
        return TemplateResponse(request, "admin/action_with_reason.html", context)

    action.__name__ = name
    return admin.action(description=description, permissions=permissions)(action)
