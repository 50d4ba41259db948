"""Staff screens for community events and birthday / anniversary policies. Writes go through
``engagement.services`` (audited); a check-in goes through the event workflow
(``activity.event_record`` with ``event_attended``), as a partner's does, so its points come from
the event rule, once.

Roles (docs/permissions.md): Marketing publishes events, checks members in, sets the policies;
Support and Analyst look."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages

from loyalty.activity.services import event_record
from loyalty.core.admin import DeleteEachAdminMixin, ReadOnlyAdminMixin
from loyalty.core.errors import ApplicationError
from loyalty.engagement.models import (
    CelebrationAward,
    CelebrationPolicy,
    CelebrationReward,
    CommunityEvent,
    EventRegistration,
)
from loyalty.engagement.services import celebrations as celebration_services
from loyalty.engagement.services import events as services


class CommunityEventForm(forms.ModelForm):
    class Meta:
        model = CommunityEvent
        fields = (
            "program",
            "title",
            "kind",
            "description",
            "starts_at",
            "ends_at",
            "place",
            "partner",
            "capacity",
            "is_published",
        )

    def clean_capacity(self):
        capacity = self.cleaned_data["capacity"]
        if self.instance.pk and capacity is not None and capacity < self.instance.registered:
            raise forms.ValidationError(f"{self.instance.registered} places are taken: the capacity cannot be lower.")
        return capacity


class CelebrationPolicyForm(forms.ModelForm):
    class Meta:
        model = CelebrationPolicy
        fields = ("program", "time_zone", "is_active")

    def clean_time_zone(self):
        name = self.cleaned_data["time_zone"]
        try:
            ZoneInfo(name)
        except (ValueError, KeyError, OSError):
            raise forms.ValidationError("Not a time zone name; use an IANA name such as Europe/Paris.") from None
        return name


@admin.register(CommunityEvent)
class CommunityEventAdmin(DeleteEachAdminMixin, admin.ModelAdmin):
    form = CommunityEventForm
    list_display = ("title", "kind", "starts_at", "place", "partner", "capacity", "registered", "is_published")
    list_filter = ("program", "kind", "is_published", "partner")
    search_fields = ("title", "place")
    readonly_fields = ("registered", "created_at")
    fields = (
        "program",
        "title",
        "kind",
        "description",
        "starts_at",
        "ends_at",
        "place",
        "partner",
        "capacity",
        "registered",
        "is_published",
        "created_at",
    )
    list_select_related = ("partner",)

    def save_model(self, request, obj, form, change):
        try:
            services.community_event_save(event=obj, actor=request.user, created=not change, reason="admin")
        except ApplicationError as exc:
            # the form was valid, the state refused it (places taken): say so, change nothing
            self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)

    def delete_model(self, request, obj):
        try:
            services.community_event_delete(event=obj, actor=request.user, reason="admin")
        except ApplicationError as exc:
            self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)


@admin.register(EventRegistration)
class EventRegistrationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("event", "member", "status", "registered_at", "cancelled_at", "attended_at")
    list_filter = ("status", "event")
    search_fields = ("member__member_number", "event__title")
    list_select_related = ("event", "member")
    actions = ["check_in_attendance"]

    def has_check_in_permission(self, request) -> bool:
        return request.user.has_perm("engagement.change_eventregistration")

    @admin.action(
        description="Check in: the member attended (points of the event rule, once)", permissions=("check_in",)
    )
    def check_in_attendance(self, request, queryset):
        done = 0
        for registration in queryset.select_related("event__program", "member"):
            try:
                _event, created = event_record(
                    partner=None,
                    member_number=registration.member.member_number,
                    event_type=services.ATTENDED_EVENT_TYPE,
                    program_name=registration.event.program.name,
                    community_event_id=registration.event_id,
                    actor=request.user,
                )
                done += created
            except ApplicationError as exc:
                self.message_user(request, f"{registration}: {exc.message} ({exc.code})", messages.ERROR)
        self.message_user(request, f"{done} checked in.", messages.SUCCESS)


class CelebrationRewardInline(admin.TabularInline):
    model = CelebrationReward
    extra = 1
    fields = ("kind", "tier", "points", "offer")


@admin.register(CelebrationPolicy)
class CelebrationPolicyAdmin(admin.ModelAdmin):
    form = CelebrationPolicyForm
    list_display = ("program", "time_zone", "is_active")
    inlines = [CelebrationRewardInline]

    def save_model(self, request, obj, form, change):
        celebration_services.celebration_policy_save(policy=obj, actor=request.user, created=not change, reason="admin")


@admin.register(CelebrationAward)
class CelebrationAwardAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("member", "kind", "year", "day", "points", "offer", "awarded_at")
    list_filter = ("kind", "year")
    search_fields = ("member__member_number",)
    list_select_related = ("member", "offer")
