"""Staff screens for the rewards catalog and coupons. Every write goes through a service of
``offers.services`` (audited); redemptions and uses are read-only records.

Roles (docs/permissions.md): Marketing designs rewards and coupon batches, imports and cancels
coupons, cancels reward redemptions; Support and Analyst look."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from import_export.admin import ImportExportModelAdmin

from loyalty.core.admin import DeleteEachAdminMixin, ReadOnlyAdminMixin
from loyalty.core.admin_actions import action_with_reason
from loyalty.core.errors import ApplicationError
from members.models import Member
from offers.models import Coupon, CouponBatch, CouponUse, Reward, RewardRedemption
from offers.resources import CouponResource
from offers.selectors.catalog import reward_figures
from offers.services import coupons as coupon_services
from offers.services import rewards as reward_services


@admin.register(Reward)
class RewardAdmin(DeleteEachAdminMixin, admin.ModelAdmin):
    list_display = (
        "name",
        "program",
        "kind",
        "points_cost",
        "stock",
        "per_member_limit",
        "partner",
        "is_active",
        "redeemed",
        "total_cost",
    )
    list_filter = ("program", "kind", "is_active", "partner")
    search_fields = ("name", "sku")
    filter_horizontal = ("tiers", "segments_include", "segments_exclude")
    readonly_fields = ("redeemed", "total_cost", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("program", "name", "description", "image", "kind", "is_active")}),
        (
            "What it gives and costs",
            {"fields": ("points_cost", "value", "sku", "cost_to_business", "coupon_valid_days")},
        ),
        ("Availability", {"fields": ("stock", "per_member_limit", "valid_from", "valid_until", "early_access_from")}),
        (
            "Who may redeem it",
            {"fields": ("partner", "exclusive", "tiers", "segments_include", "segments_exclude")},
        ),
        ("Figures", {"fields": ("redeemed", "total_cost", "created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return reward_figures(rewards=super().get_queryset(request).select_related("program", "partner"))

    @admin.display(description="Redeemed", ordering="redeemed")
    def redeemed(self, obj):
        return getattr(obj, "redeemed", 0)

    @admin.display(description="Cost to the business", ordering="total_cost")
    def total_cost(self, obj):
        return f"{Decimal(getattr(obj, 'total_cost', 0) or 0):.2f}"

    def save_model(self, request, obj, form, change):
        request.reward_rules_before = reward_services.reward_rules(reward=obj) if change else None
        reward_services.reward_save(reward=obj, actor=request.user, created=not change, reason="admin")

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        reward_services.reward_rules_record(
            reward=form.instance, actor=request.user, before=getattr(request, "reward_rules_before", None)
        )

    def has_delete_permission(self, request, obj=None):
        # a redeemed reward is kept (its redemptions and coupons point at it): make it inactive
        in_use = obj is not None and (
            RewardRedemption.objects.filter(reward=obj).exists() or Coupon.objects.filter(reward=obj).exists()
        )
        return super().has_delete_permission(request, obj) and not in_use

    def delete_model(self, request, obj):
        reward_services.reward_delete(reward=obj, actor=request.user, reason="admin")


@admin.register(RewardRedemption)
class RewardRedemptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "reward", "member", "points", "status", "channel", "partner", "coupon")
    list_filter = ("status", "channel", "reward")
    list_select_related = ("reward", "member", "partner", "coupon")
    search_fields = ("=member__member_number", "=coupon__code")
    date_hierarchy = "created_at"
    actions = [
        action_with_reason(
            service=reward_services.reward_redemption_cancel,
            description="Cancel selected redemptions (refund the points, return the stock, cancel the coupon)",
            name="cancel_reward_redemptions",
            permissions=("cancel",),
            target_kwarg="reward_redemption",
        )
    ]

    def has_cancel_permission(self, request):
        return request.user.has_perm("offers.change_rewardredemption")


class CouponBatchForm(forms.ModelForm):
    count = forms.IntegerField(min_value=1, max_value=coupon_services.BATCH_COUNT_MAX)
    member_number = forms.CharField(
        max_length=20, required=False, help_text="Bind every coupon of the batch to this member (empty: anyone)"
    )
    valid_from = forms.DateTimeField(required=False, help_text="Usable from (empty: at once)")

    class Meta:
        model = CouponBatch
        fields = ("program", "name", "offer", "prefix", "code_length", "count", "max_uses", "expires_at")

    def clean(self):
        cleaned = super().clean()
        try:
            coupon_services.coupon_code_generate(
                prefix=cleaned.get("prefix") or "", length=cleaned.get("code_length") or 10
            )
        except ApplicationError as exc:
            self.add_error(next((f for f in exc.fields if f in self.fields), None), f"{exc.message} ({exc.code})")
        number = (cleaned.get("member_number") or "").strip()
        cleaned["member"] = None
        if number:
            cleaned["member"] = Member.objects.filter(member_number=number).first()
            if cleaned["member"] is None:
                self.add_error("member_number", "No member with this number")
        offer = cleaned.get("offer")
        if offer is not None and cleaned.get("program") is not None and offer.program_id != cleaned["program"].pk:
            self.add_error("offer", "This offer is of another program")
        return cleaned


@admin.register(CouponBatch)
class CouponBatchAdmin(admin.ModelAdmin):
    """Add = generate the batch's coupons (``coupon_batch_generate``); a batch is not changed after."""

    form = CouponBatchForm
    list_display = (
        "name",
        "program",
        "offer",
        "prefix",
        "code_length",
        "count",
        "max_uses",
        "expires_at",
        "created_at",
    )
    list_filter = ("program",)
    search_fields = ("name", "prefix")

    def get_fields(self, request, obj=None):
        if obj is None:
            return (
                "program",
                "name",
                "offer",
                "prefix",
                "code_length",
                "count",
                "max_uses",
                "valid_from",
                "expires_at",
                "member_number",
            )
        return (
            "program",
            "name",
            "offer",
            "prefix",
            "code_length",
            "count",
            "max_uses",
            "expires_at",
            "created_by",
            "created_at",
        )

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj is not None else ()

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            batch = coupon_services.coupon_batch_generate(
                program=data["program"],
                name=data["name"],
                count=data["count"],
                prefix=data.get("prefix") or "",
                length=data["code_length"],
                max_uses=data["max_uses"],
                expires_at=data.get("expires_at"),
                valid_from=data.get("valid_from"),
                offer=data.get("offer"),
                member=data.get("member"),
                actor=request.user,
            )
        except ApplicationError as exc:  # checked by the form; the service has the last word
            self.message_user(request, f"Not generated: {exc.message} ({exc.code})", messages.ERROR)
            raise
        obj.pk, obj.created_at, obj.prefix = batch.pk, batch.created_at, batch.prefix


@admin.register(Coupon)
class CouponAdmin(ReadOnlyAdminMixin, ImportExportModelAdmin):
    """Coupons come from batches, imports and redemptions, never typed in: no add or change.
    Import (one service call per file) needs the change permission, export the view one."""

    resource_classes = [CouponResource]
    list_display = ("code", "status", "source", "member", "uses_count", "max_uses", "expires_at", "issued_at")
    list_filter = ("status", "source", "batch")
    list_select_related = ("member",)
    search_fields = ("code", "=member__member_number")
    date_hierarchy = "issued_at"
    actions = [
        action_with_reason(
            service=coupon_services.coupon_cancel,
            description="Cancel selected coupons (no further use)",
            name="cancel_coupons",
            permissions=("cancel",),
            target_kwarg="coupon",
        )
    ]

    def has_cancel_permission(self, request):
        return request.user.has_perm("offers.change_coupon")


@admin.register(CouponUse)
class CouponUseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("used_at", "coupon", "member", "partner", "purchase_external_id", "discount", "status")
    list_filter = ("status", "partner")
    list_select_related = ("coupon", "member", "partner")
    search_fields = ("=coupon__code", "=purchase_external_id")
    date_hierarchy = "used_at"
