from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from import_export.admin import ImportExportModelAdmin

from loyalty.activity import selectors as overview_selectors
from loyalty.activity.services import enrollment_record
from loyalty.core.admin_actions import action_with_reason
from loyalty.core.errors import ApplicationError
from members import services
from members.models import ConsentEvent, EnrollmentSource, Member
from members.resources import MemberResource


class ConsentEventInline(admin.TabularInline):
    model = ConsentEvent
    fields = ("occurred_at", "purpose", "channel", "granted", "source", "wording_version")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "Consent history"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class MemberAdminForm(forms.ModelForm):
    class Meta:
        model = Member
        fields = "__all__"  # noqa: DJ007 - the admin fieldsets decide what is shown

    def clean(self):
        cleaned = super().clean()
        values = {f: cleaned.get(f) for f in self.changed_data if f in services.UPDATABLE_FIELDS}
        try:
            services.member_profile_validate(values=values, member=self.instance if self.instance.pk else None)
        except ApplicationError as exc:
            field = next((f for f in exc.fields if f in self.fields), None)
            self.add_error(field, f"{exc.message} ({exc.code})")
        return cleaned

    def validate_unique(self):
        pass  # uniqueness is checked by the service (case-insensitive email) in clean()


class SegmentListFilter(admin.SimpleListFilter):
    """Members currently in one segment (the segment list's members, as staff see them)."""

    title = "segment"
    parameter_name = "segment"

    def lookups(self, request, model_admin):
        return overview_selectors.segment_choices()

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not str(value).isdigit():
            return queryset.none()
        return overview_selectors.members_in_segment(queryset, segment_id=int(value))


def _changelist(request, name: str, perm: str, query: str) -> str | None:
    """The admin list ``name`` filtered by ``query``, when the user may view it."""
    if not request.user.has_perm(perm):
        return None
    return f"{reverse(f'admin:{name}_changelist')}?{query}"


def overview_links(request, member: Member, overview) -> dict:
    """Links from the member page to each full (filtered) admin list the user may view."""
    m = f"member__id__exact={member.pk}"
    links: dict = {
        "purchases": _changelist(request, "ledger_purchase", "ledger.view_purchase", m),
        "tiers": _changelist(request, "tiers_membertier", "tiers.view_membertier", m),
        "segments": _changelist(request, "segments_segmentmembership", "segments.view_segmentmembership", m),
        "messages": _changelist(request, "messaging_message", "messaging.view_message", m),
        "audit": _changelist(
            request, "core_auditevent", "core.view_auditevent", f"target_type=members.member&target_id={member.pk}"
        ),
        "offers": [
            (label, url)
            for label, url in (
                ("Coupons", _changelist(request, "offers_coupon", "offers.view_coupon", m)),
                (
                    "Reward redemptions",
                    _changelist(request, "offers_rewardredemption", "offers.view_rewardredemption", m),
                ),
                ("Offer redemptions", _changelist(request, "offers_offerredemption", "offers.view_offerredemption", m)),
                ("Offer activations", _changelist(request, "offers_offeractivation", "offers.view_offeractivation", m)),
            )
            if url
        ],
    }
    if request.user.has_perm("segments.view_segment"):
        links["segment_base"] = reverse("admin:segments_segment_changelist")
    if request.user.has_perm("ledger.view_purchase"):
        links["purchase_base"] = reverse("admin:ledger_purchase_changelist")
    account = overview.account
    if account is not None and request.user.has_perm("ledger.view_account"):
        links["account"] = reverse("admin:ledger_account_change", args=[account.pk])
        if request.user.has_perm("ledger.adjust_points"):
            links["adjust"] = reverse("admin:ledger_account_adjust", args=[account.pk])
    return links


@admin.register(Member)
class MemberAdmin(ImportExportModelAdmin):
    resource_classes = [MemberResource]
    form = MemberAdminForm
    list_display = ("member_number", "first_name", "last_name", "email", "status", "enrollment_source", "enrolled_at")
    list_filter = ("status", "enrollment_source", SegmentListFilter, ("enrolled_at", admin.DateFieldListFilter))
    search_fields = ("=member_number", "email", "first_name", "last_name", "=external_id")
    date_hierarchy = "enrolled_at"
    readonly_fields = (
        "member_number",
        "external_id",
        "referral_code",
        "status",
        "enrolled_at",
        "enrollment_source",
        "updated_at",
        "offers_ranking",
    )
    raw_id_fields = ("user", "referred_by")
    inlines = [ConsentEventInline]
    fieldsets = (
        (
            None,
            {"fields": ("member_number", "status", "external_id", "enrolled_at", "enrollment_source", "referral_code")},
        ),
        (
            "Profile",
            {
                "fields": (
                    "first_name",
                    "last_name",
                    "email",
                    "phone",
                    "birth_date",
                    "postal_code",
                    "country",
                    "preferred_language",
                )
            },
        ),
        (
            "Demographics",
            {
                "classes": ("collapse",),
                "fields": (
                    "age_band",
                    "income_band",
                    "household_size",
                    "household_composition",
                    "kids_count",
                    "home_ownership",
                    "marital_status",
                ),
            },
        ),
        ("Portal", {"fields": ("user", "referred_by", "updated_at")}),
        ("Offers", {"fields": ("offers_ranking",)}),
    )
    actions = [
        action_with_reason(
            service=services.member_suspend, description="Suspend selected members", name="suspend_members"
        ),
        action_with_reason(
            service=services.member_reactivate, description="Reactivate selected members", name="reactivate_members"
        ),
        action_with_reason(service=services.member_close, description="Close selected members", name="close_members"),
        action_with_reason(
            service=services.member_erase, description="Erase personal data of selected members", name="erase_members"
        ),
    ]

    class Media:
        css = {"all": ("admin/loyalty/admin.css",)}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The member at a glance above the form: balance, tier, purchases, points history (paged
        with ``purchases_page`` / ``entries_page``), segments, consents, offers, messages, audit."""
        extra_context = dict(extra_context or {})
        member = self.get_object(request, object_id)
        if member is not None and self.has_view_permission(request, member):
            overview = overview_selectors.member_overview(
                member=member,
                entries_page=request.GET.get("entries_page", 1),
                purchases_page=request.GET.get("purchases_page", 1),
            )
            extra_context["overview"] = overview
            extra_context["links"] = overview_links(request, member, overview)
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Offers ranking")
    def offers_ranking(self, obj):
        if not obj.pk:
            return "-"
        url = reverse("admin:offers_member_ranking", args=[obj.pk])
        return format_html('<a href="{}">Why these offers: the ranking with its scores and reasons</a>', url)

    def has_delete_permission(self, request, obj=None):
        return False  # members are closed or erased, never deleted (their ledger stays)

    def has_import_permission(self, request):
        # an import enrolls members and rewrites existing ones: add and change, not just a view
        return self.has_add_permission(request) and self.has_change_permission(request)

    def save_model(self, request, obj, form, change):
        values = {f: form.cleaned_data.get(f) for f in form.changed_data if f in services.UPDATABLE_FIELDS}
        try:
            if change:
                saved = services.member_update(member=obj, actor=request.user, reason="admin edit", **values)
            else:
                demographics = {f: values.pop(f) for f in services.DEMOGRAPHIC_FIELDS if f in values}
                # the enrollment workflow: member, points account, base tier, ``member.enrolled``
                saved = enrollment_record(
                    source=EnrollmentSource.STAFF, actor=request.user, demographics=demographics, **values
                )
        except ApplicationError as exc:
            self.message_user(request, f"Not saved: {exc.message} ({exc.code})", messages.ERROR)
            raise
        obj.pk = saved.pk
        obj.member_number = saved.member_number
