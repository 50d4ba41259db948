"""Staff screens for tier rules and member tier status. Every change goes through a service."""

from django import forms
from django.contrib import admin

from loyalty.core.admin_actions import ReasonForm, action_with_reason
from loyalty.core.errors import ApplicationError
from loyalty.tiers import services
from loyalty.tiers.models import MemberTier, Tier, TierChange, TierPerk, TierPolicy, TierThreshold


@admin.register(TierPolicy)
class TierPolicyAdmin(admin.ModelAdmin):
    list_display = ("program", "window", "downgrade_policy", "grace_days", "adjustments_count")
    list_filter = ("window", "downgrade_policy")

    def get_readonly_fields(self, request, obj=None):
        return ("program",) if obj else ()

    def save_model(self, request, obj, form, change):
        saved = services.tier_policy_set(
            program=obj.program,
            window=obj.window,
            downgrade_policy=obj.downgrade_policy,
            grace_days=obj.grace_days,
            adjustments_count=obj.adjustments_count,
            actor=request.user,
        )
        obj.pk = saved.pk


class TierThresholdInline(admin.TabularInline):
    model = TierThreshold
    extra = 1
    verbose_name_plural = "Entry thresholds (combined with the tier's any/all)"


class TierPerkInline(admin.TabularInline):
    model = TierPerk
    extra = 1
    fields = ("position", "title", "description")
    verbose_name_plural = "Perks shown to members"


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = ("name", "program", "rank", "combine", "earn_multiplier", "exclusive_rewards", "early_access")
    list_filter = ("program",)
    ordering = ("program", "rank")
    inlines = [TierThresholdInline, TierPerkInline]
    fieldsets = (
        (None, {"fields": ("program", "name", "rank", "combine", "description")}),
        ("Benefits", {"fields": ("earn_multiplier", "exclusive_rewards", "early_access")}),
    )

    def save_model(self, request, obj, form, change):
        request._tier_before = services.tier_snapshot(tier=Tier.objects.get(pk=obj.pk)) if change else None
        services.tier_save(tier=obj, actor=request.user)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.tier_rules_record(
            tier=form.instance, actor=request.user, before=getattr(request, "_tier_before", None)
        )


class TierChangeInline(admin.TabularInline):
    model = TierChange
    fk_name = "status"
    fields = ("changed_at", "from_tier", "to_tier", "reason", "note", "actor")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-changed_at", "-id")
    verbose_name_plural = "Tier history"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ManualTierActionForm(ReasonForm):
    tier = forms.ModelChoiceField(queryset=Tier.objects.select_related("program").order_by("program", "rank"))
    until = forms.DateField(help_text="Last day of the tier set by hand (YYYY-MM-DD); then the normal rules apply")
    field_order = ["tier", "until", "reason"]


class ManualTierAddForm(forms.ModelForm):
    """Add page = set a tier by hand for a member (the status row is created if missing)."""

    tier_choice = forms.ModelChoiceField(
        label="Tier", queryset=Tier.objects.select_related("program").order_by("program", "rank")
    )
    until = forms.DateField(help_text="Last day of the tier set by hand (YYYY-MM-DD)")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=1000)

    class Meta:
        model = MemberTier
        fields = ["member", "program"]

    def validate_unique(self):
        pass  # an existing status is changed by the service

    def clean(self):
        cleaned = super().clean()
        if all(cleaned.get(f) for f in ("member", "program", "tier_choice", "until", "reason")):
            try:
                services.tier_manual_validate(
                    member=cleaned["member"],
                    program=cleaned["program"],
                    tier=cleaned["tier_choice"],
                    until=cleaned["until"],
                    reason=cleaned["reason"],
                )
            except ApplicationError as exc:
                raise forms.ValidationError(f"{exc.message} ({exc.code})") from None
        return cleaned


def _manual_set(*, status, actor, tier, until, reason):
    return services.tier_manual_set(
        member=status.member, program=status.program, tier=tier, until=until, reason=reason, actor=actor
    )


def _manual_end(*, status, actor, reason):
    return services.tier_manual_end(member=status.member, program=status.program, reason=reason, actor=actor)


@admin.register(MemberTier)
class MemberTierAdmin(admin.ModelAdmin):
    list_display = (
        "member",
        "program",
        "tier",
        "earned_tier",
        "tier_since",
        "manual_until",
        "period_end",
        "downgrade_to",
        "downgrade_at",
    )
    list_filter = ("program", "tier", ("manual_until", admin.EmptyFieldListFilter))
    list_select_related = ("member", "program", "tier", "earned_tier", "downgrade_to")
    search_fields = ("=member__member_number", "member__email", "member__last_name")
    raw_id_fields = ("member",)
    readonly_fields = (
        "member",
        "program",
        "tier",
        "earned_tier",
        "tier_since",
        "period_start",
        "period_end",
        "downgrade_to",
        "downgrade_at",
        "manual_until",
        "manual_reason",
    )
    actions = [
        action_with_reason(
            service=_manual_set,
            description="Set tier by hand (status match)",
            name="set_manual_tier",
            permissions=("manual",),
            form_class=ManualTierActionForm,
            target_kwarg="status",
        ),
        action_with_reason(
            service=_manual_end,
            description="End tier set by hand",
            name="end_manual_tier",
            permissions=("manual",),
            target_kwarg="status",
        ),
    ]

    def has_manual_permission(self, request) -> bool:
        return request.user.has_perm("tiers.manual_tier")

    def has_add_permission(self, request) -> bool:
        return self.has_manual_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # changes go through the actions

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ManualTierAddForm
            kwargs["fields"] = None
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return ((None, {"fields": ("member", "program", "tier_choice", "until", "reason")}),)
        return super().get_fieldsets(request, obj)

    def get_inlines(self, request, obj):
        return [TierChangeInline] if obj else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        status = services.tier_manual_set(
            member=data["member"],
            program=data["program"],
            tier=data["tier_choice"],
            until=data["until"],
            reason=data["reason"],
            actor=request.user,
        )
        obj.pk = status.pk

    def save_related(self, request, form, formsets, change):
        pass  # the service wrote everything
