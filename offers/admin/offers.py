"""Offers in the admin: create and schedule (condition and benefit grouped, checked per kind),
preview who is eligible, publish / pause / resume / end, and per-offer figures. Redemptions and
activations are read-only. Every write goes through ``offers.services.offers`` (audited)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, Sum
from django.utils.html import format_html, format_html_join

from loyalty.core.admin import DeleteEachAdminMixin, ReadOnlyAdminMixin
from loyalty.core.errors import ApplicationError
from offers.benefits import BenefitSpec, benefit_describe, benefit_errors
from offers.conditions import PURCHASE_CHANNELS, WEEKDAYS, ConditionSpec, condition_describe, condition_errors
from offers.models import Offer, OfferActivation, OfferRedemption, RedemptionState
from offers.selectors.audience import offer_audience
from offers.services import offers as services


class CommaListField(forms.CharField):
    """A list of words typed as "dairy, bakery" (kept as a JSON list)."""

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [part.strip() for part in text.split(",") if part.strip()]


class OfferForm(forms.ModelForm):
    condition_categories = CommaListField(required=False, help_text="Comma-separated categories")
    condition_skus = CommaListField(required=False, help_text="Comma-separated SKUs")
    condition_days_of_week = forms.TypedMultipleChoiceField(
        choices=sorted(WEEKDAYS.items()), coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    condition_channels = forms.MultipleChoiceField(
        choices=list(PURCHASE_CHANNELS.items()), required=False, widget=forms.CheckboxSelectMultiple
    )
    scope_categories = CommaListField(required=False, help_text="Bonus points: on these categories only")
    scope_skus = CommaListField(required=False, help_text="Bonus points: on these SKUs only")

    class Meta:
        model = Offer
        fields = (
            "program",
            "name",
            "description",
            "image",
            "priority",
            *(f.name for f in Offer._meta.concrete_fields if f.name.startswith(("condition_", "benefit_", "scope_"))),
            "coupon_valid_days",
            "scope_partners",
            "valid_from",
            "valid_until",
            "requires_activation",
            "tiers",
            "segments_include",
            "segments_exclude",
            "partners",
            "max_redemptions",
            "max_per_member",
            "points_budget",
        )

    def clean(self):
        """Each condition and benefit kind says which fields it needs (``offers.conditions``,
        ``offers.benefits``); what is missing or wrong is an error on that field."""
        data = super().clean()
        probe = Offer(**{k: v for k, v in data.items() if k in {f.name for f in Offer._meta.concrete_fields}})
        probe.benefit_reward_id = data["benefit_reward"].pk if data.get("benefit_reward") else None
        errors = {}
        if data.get("condition_kind"):
            errors.update(condition_errors(ConditionSpec.of(probe)))
        if data.get("benefit_kind"):
            errors.update(benefit_errors(BenefitSpec.of(probe)))
        for name, messages_ in errors.items():
            if name in self.fields and name not in self.errors:
                self.add_error(name, messages_)
        valid_from, valid_until = data.get("valid_from"), data.get("valid_until")
        if valid_from and valid_until and valid_until <= valid_from:
            self.add_error("valid_until", "Must be after the start.")
        return data


def _each(modeladmin, request, queryset, change, done: str) -> None:
    changed = 0
    for offer in queryset:
        try:
            change(offer=offer, actor=request.user, reason="admin")
            changed += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{offer}: {exc.message}", messages.WARNING)
    if changed:
        modeladmin.message_user(request, f"{changed} offer(s) {done}.", messages.SUCCESS)


@admin.register(Offer)
class OfferAdmin(DeleteEachAdminMixin, admin.ModelAdmin):
    form = OfferForm
    list_display = (
        "name",
        "program",
        "status",
        "condition_text",
        "benefit_text",
        "valid_from",
        "valid_until",
        "redemptions",
        "points_given",
        "budget_left",
    )
    list_filter = ("program", "status", "benefit_kind", "condition_kind", "requires_activation")
    search_fields = ("name",)
    autocomplete_fields = ()
    filter_horizontal = ("segments_include", "segments_exclude", "tiers", "partners", "scope_partners")
    readonly_fields = ("status", "redemptions", "points_given", "budget_left", "audience_preview")
    actions = ("publish_offers", "pause_offers", "resume_offers", "end_offers")
    fieldsets = (
        (None, {"fields": ("program", "name", "description", "image", "priority", "status")}),
        (
            "Condition: what the purchase must meet",
            {
                "fields": (
                    "condition_kind",
                    "condition_min_spend",
                    "condition_categories",
                    "condition_skus",
                    "condition_count",
                    "condition_window_days",
                    "condition_days_of_week",
                    "condition_channels",
                )
            },
        ),
        (
            "Benefit: what the member gets",
            {
                "fields": (
                    "benefit_kind",
                    "benefit_multiplier",
                    "benefit_points",
                    "benefit_value",
                    "benefit_sku",
                    "benefit_reward",
                    "coupon_valid_days",
                    "scope_categories",
                    "scope_skus",
                    "scope_partners",
                )
            },
        ),
        (
            "Who and when",
            {
                "fields": (
                    "valid_from",
                    "valid_until",
                    "requires_activation",
                    "tiers",
                    "segments_include",
                    "segments_exclude",
                    "partners",
                )
            },
        ),
        ("Limits", {"fields": ("max_redemptions", "max_per_member", "points_budget")}),
        ("Figures", {"fields": ("redemptions", "points_given", "budget_left", "audience_preview")}),
    )

    def get_queryset(self, request):
        """Figures from the redemptions (offers without a total limit keep no counters)."""
        done = Q(redemptions__status=RedemptionState.COMPLETED)
        return (
            super()
            .get_queryset(request)
            .select_related("program")
            .annotate(used=Count("redemptions", filter=done), given=Sum("redemptions__points", filter=done))
        )

    @admin.display(description="Redemptions", ordering="used")
    def redemptions(self, obj: Offer) -> int:
        return obj.used

    @admin.display(description="Points issued", ordering="given")
    def points_given(self, obj: Offer) -> int:
        return obj.given or 0

    @admin.display(description="Condition")
    def condition_text(self, obj: Offer) -> str:
        return condition_describe(ConditionSpec.of(obj))

    @admin.display(description="Benefit")
    def benefit_text(self, obj: Offer) -> str:
        return benefit_describe(BenefitSpec.of(obj))

    @admin.display(description="Budget left")
    def budget_left(self, obj: Offer) -> str:
        if obj.points_budget is None:
            return "no budget"
        return f"{max(obj.points_budget - obj.points_issued, 0)} of {obj.points_budget}"

    @admin.display(description="Who is eligible now")
    def audience_preview(self, obj: Offer) -> str:
        if obj.pk is None:
            return "Saved offers show how many members they reach."
        preview = offer_audience(offer=obj)
        sample = format_html_join("", "<li>{} {}</li>", preview.sample) if preview.sample else ""
        return format_html(
            "{} member(s) (tiers, segments and status; purchase conditions and limits apply at each purchase)"
            "<ul>{}</ul>",
            preview.count,
            sample,
        )

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        services.offer_save(offer=obj, actor=request.user, reason="admin")

    def delete_model(self, request, obj):
        services.offer_delete(offer=obj, actor=request.user, reason="admin")

    @admin.action(description="Publish (active now, or from its start date)", permissions=["change"])
    def publish_offers(self, request, queryset):
        _each(self, request, queryset, services.offer_publish, "published")

    @admin.action(description="Pause", permissions=["change"])
    def pause_offers(self, request, queryset):
        _each(self, request, queryset, services.offer_pause, "paused")

    @admin.action(description="Resume", permissions=["change"])
    def resume_offers(self, request, queryset):
        _each(self, request, queryset, services.offer_resume, "resumed")

    @admin.action(description="End (for good)", permissions=["change"])
    def end_offers(self, request, queryset):
        _each(self, request, queryset, services.offer_end, "ended")


@admin.register(OfferRedemption)
class OfferRedemptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "offer", "member", "points", "coupon", "purchase", "channel", "status")
    list_filter = ("status", "channel")
    search_fields = ("=member__member_number", "offer__name")
    list_select_related = ("offer", "member", "coupon", "purchase")
    raw_id_fields = ("member", "purchase", "coupon")


@admin.register(OfferActivation)
class OfferActivationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("activated_at", "offer", "member", "channel")
    list_filter = ("channel",)
    search_fields = ("=member__member_number", "offer__name")
    list_select_related = ("offer", "member")
    raw_id_fields = ("member",)
