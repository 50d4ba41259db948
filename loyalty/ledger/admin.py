"""Ledger admin: everything read-only; the only change is "adjust points" through the service."""

from django import forms
from django.contrib import admin

from loyalty.core.admin import ReadOnlyAdminMixin
from loyalty.core.admin_actions import ReasonForm, action_with_reason
from loyalty.ledger import selectors, services
from loyalty.ledger.models import (
    Account,
    AccountKind,
    Entry,
    LedgerTransaction,
    Lot,
    Program,
    Purchase,
    PurchaseLine,
    Redemption,
    Return,
)


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "currency_name",
        "earn_rate",
        "pending_days",
        "expiry_policy",
        "return_policy",
        "point_value",
        "is_default",
    )
    readonly_fields = ("liability",)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            services.program_update(program=obj, actor=request.user, changed=form.changed_data)
        else:
            created = services.program_create(**{f: form.cleaned_data[f] for f in form.cleaned_data})
            obj.pk = created.pk

    @admin.display(description="Points liability")
    def liability(self, obj):
        if not obj.pk:
            return "-"
        figures = selectors.points_liability(program=obj)
        return f"{figures['points']} points = {figures['value']} ({figures['available']} available, {figures['pending']} pending)"


class LotInline(ReadOnlyInline):
    model = Lot
    fields = ("created_at", "points", "remaining", "is_pending", "available_at", "expires_at", "transaction")
    readonly_fields = fields
    ordering = ("-created_at",)


class EntryInline(ReadOnlyInline):
    model = Entry
    fields = ("created_at", "kind", "points", "transaction", "lot")
    readonly_fields = fields
    ordering = ("-created_at", "-id")


class AdjustForm(ReasonForm):
    points = forms.IntegerField(help_text="Positive to add, negative to remove")


@admin.register(Account)
class AccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "member",
        "program",
        "kind",
        "available",
        "pending",
        "debt",
        "earned",
        "redeemed",
        "expired",
    )
    list_filter = ("kind", "program")
    search_fields = ("=member__member_number", "member__email", "member__last_name")
    list_select_related = ("member", "program")
    raw_id_fields = ("member",)
    readonly_fields = ("balance_breakdown",)
    inlines = [LotInline, EntryInline]
    actions = [
        action_with_reason(
            service=services.points_adjust,
            description="Adjust points",
            name="adjust_points",
            permissions=("adjust",),
            form_class=AdjustForm,
            target_kwarg="account",
        )
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(kind=AccountKind.MEMBER)

    def has_adjust_permission(self, request):
        return request.user.has_perm("ledger.adjust_points")

    @admin.display(description="Balance")
    def balance_breakdown(self, obj):
        return (
            f"available {obj.available}, pending {obj.pending}, debt {obj.debt}; lifetime earned {obj.earned}, "
            f"redeemed {obj.redeemed}, expired {obj.expired}, reversed {obj.reversed}; "
            f"sum of entries {selectors.account_entries_sum(account=obj)}, sum of lots {selectors.account_lots_sum(account=obj)}"
        )


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "created_at", "kind", "program", "reason", "actor_label", "idempotency_key")
    list_filter = ("kind", "program")
    search_fields = ("=idempotency_key", "reason")
    date_hierarchy = "created_at"
    inlines = [EntryInline]


class PurchaseLineInline(ReadOnlyInline):
    model = PurchaseLine
    fields = ("sku", "category", "quantity", "unit_price", "amount", "discount", "returned_quantity")
    readonly_fields = fields


class ReturnInline(ReadOnlyInline):
    model = Return
    fields = ("external_id", "occurred_at", "amount", "points_reversed", "points_written_off", "points_to_debt")
    readonly_fields = fields


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "external_id",
        "member",
        "partner",
        "store_code",
        "occurred_at",
        "eligible_amount",
        "returned_amount",
        "points_earned",
    )
    list_filter = ("program", "partner")
    search_fields = ("=external_id", "=member__member_number", "store_code")
    date_hierarchy = "occurred_at"
    list_select_related = ("member", "partner")
    inlines = [PurchaseLineInline, ReturnInline]


@admin.register(Return)
class ReturnAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "external_id",
        "purchase",
        "occurred_at",
        "amount",
        "points_reversed",
        "points_written_off",
        "points_to_debt",
    )
    search_fields = ("=external_id", "=purchase__external_id")


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "account", "partner", "external_id", "points", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("=external_id", "=account__member__member_number")
