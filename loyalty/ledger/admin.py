"""Ledger admin: everything read-only; the only change is "adjust points" through the service."""

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join

from loyalty.core.admin import ReadOnlyAdminMixin
from loyalty.core.admin_actions import ReasonForm, action_with_reason
from loyalty.core.errors import ApplicationError
from loyalty.ledger import selectors, services
from loyalty.ledger.explanations import explanation_words
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


class EntryInline(ReadOnlyInline):
    model = Entry
    fields = ("created_at", "kind", "points", "transaction", "lot")
    readonly_fields = fields
    ordering = ("-created_at", "-id")


LOTS_PER_PAGE = 25
ENTRIES_PER_PAGE = 25


class AdjustForm(ReasonForm):
    points = forms.IntegerField(help_text="Positive to add, negative to remove")

    field_order = ("points", "reason")


class AdjustOnceForm(AdjustForm):
    """The one-account adjustment: the page's one-time token is the idempotency key, so a double
    click or a resent form adjusts once."""

    once = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].help_text = "Shown in the member's points history and in the audit trail."

    def clean_points(self):
        points = self.cleaned_data["points"]
        if points == 0:
            raise forms.ValidationError("Give a number of points other than 0.")
        return points


def account_words(account: Account) -> str:
    """Who the account belongs to and what it holds: "Jane Doe (member 1234567890): 500 available, 20 pending"."""
    member = account.member
    who = f"{member.first_name} {member.last_name}".strip() if member else str(account)
    number = f" (member {member.member_number})" if member else ""
    debt = f", {account.debt} owed" if account.debt else ""
    return f"{who}{number}: {account.available} available, {account.pending} pending{debt}"


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
    change_form_template = "admin/ledger/account/change_form.html"
    actions = [
        action_with_reason(
            service=services.points_adjust,
            description="Adjust points",
            name="adjust_points",
            permissions=("adjust",),
            form_class=AdjustForm,
            target_kwarg="account",
            describe=account_words,
        )
    ]

    class Media:
        css = {"all": ("admin/loyalty/admin.css",)}

    def get_queryset(self, request):
        return super().get_queryset(request).filter(kind=AccountKind.MEMBER)

    def get_urls(self):
        adjust = path("<int:pk>/adjust/", self.admin_site.admin_view(self.adjust_view), name="ledger_account_adjust")
        return [adjust, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Lots and entries a page at a time (``lots_page``, ``entries_page``): an account with
        thousands of entries renders as fast as a new one."""
        extra_context = dict(extra_context or {})
        account = self.get_object(request, object_id)
        if account is not None:
            lots = Lot.objects.filter(account=account).order_by("-created_at", "-id")
            entries = (
                selectors.account_entries(account=account).select_related("transaction").order_by("-created_at", "-id")
            )
            entry_page = Paginator(entries, ENTRIES_PER_PAGE).get_page(request.GET.get("entries_page"))
            extra_context.update(
                lots=Paginator(lots, LOTS_PER_PAGE).get_page(request.GET.get("lots_page")),
                entries=entry_page,
                entry_rows=[(e, explanation_words(e.transaction.explanation)) for e in entry_page.object_list],
                can_adjust=self.has_adjust_permission(request),
                adjust_url=reverse("admin:ledger_account_adjust", args=[account.pk]),
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def adjust_view(self, request, pk: int):
        """One account's adjustment: the form names the member, the balance and asks for the reason."""
        account = get_object_or_404(self.get_queryset(request).select_related("member", "program"), pk=pk)
        if not self.has_adjust_permission(request):
            raise PermissionDenied
        form = AdjustOnceForm(request.POST or None, initial={"once": uuid.uuid4()})
        if request.method == "POST" and form.is_valid():
            data = dict(form.cleaned_data)
            key = f"admin-adjust:{account.pk}:{data.pop('once')}"
            try:
                services.points_adjust(account=account, actor=request.user, idempotency_key=key, **data)
            except ApplicationError as exc:
                form.add_error("points" if exc.code != "reason_required" else "reason", f"{exc.message} ({exc.code})")
            else:
                self.message_user(
                    request, f"{form.cleaned_data['points']:+} points for {account_words(account)}", messages.SUCCESS
                )
                return redirect(reverse("admin:ledger_account_change", args=[account.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Adjust the points of {account_words(account).split(':')[0]}",
            "account": account,
            "account_words": account_words(account),
            "form": form,
            "opts": self.model._meta,
            "original": account,
        }
        return TemplateResponse(request, "admin/ledger/account/adjust.html", context)

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
    exclude = ("explanation",)
    readonly_fields = ("explanation_in_words",)

    @admin.display(description="How the points were counted")
    def explanation_in_words(self, obj):
        words = explanation_words(obj.explanation, with_total=True)
        return format_html_join("", "<div>{}</div>", ((w,) for w in words)) if words else "-"


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
