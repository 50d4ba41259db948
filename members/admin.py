from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from import_export.admin import ImportExportModelAdmin

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


@admin.register(Member)
class MemberAdmin(ImportExportModelAdmin):
    resource_classes = [MemberResource]
    form = MemberAdminForm
    list_display = ("member_number", "first_name", "last_name", "email", "status", "enrollment_source", "enrolled_at")
    list_filter = ("status", "enrollment_source", ("enrolled_at", admin.DateFieldListFilter))
    search_fields = ("=member_number", "email", "first_name", "last_name", "=external_id")
    date_hierarchy = "enrolled_at"
    readonly_fields = (
        "member_number",
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
