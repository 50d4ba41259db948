"""CSV import/export of members (django-import-export). A new row is enrolled through the
enrollment workflow (``enrollment_record``: member, points account, base tier, ``member.enrolled``),
a known one updated through ``member_update``; a bad row is reported with its number and reason
and the whole file is rolled back."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from import_export import fields, resources

from loyalty.activity.services import enrollment_record
from loyalty.core.errors import ApplicationError
from members import services
from members.models import EnrollmentSource, Member

IMPORT_FIELDS = ("member_number", "external_id") + services.PROFILE_FIELDS + services.DEMOGRAPHIC_FIELDS


class MemberResource(resources.ModelResource):
    member_number = fields.Field(attribute="member_number", column_name="member_number")

    class Meta:
        model = Member
        fields = IMPORT_FIELDS + ("status", "enrolled_at", "enrollment_source")
        export_order = fields
        import_id_fields = ("member_number",)
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = False
        use_transactions = True

    def get_import_fields(self):
        return [f for f in super().get_import_fields() if f.attribute in IMPORT_FIELDS]

    def import_instance(self, instance, row, **kwargs):
        super().import_instance(instance, row, **kwargs)
        if instance.email == "":
            instance.email = None
        if instance.external_id == "":
            instance.external_id = None

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        # A new row has no number/referral code/enrollment yet: the enrollment assigns them.
        errors = dict(import_validation_errors or {})
        exclude = set(errors) | {"member_number", "referral_code", "enrolled_at", "enrollment_source"}
        try:
            # uniqueness and constraints are the service's to check (case-insensitive email)
            instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def save_instance(self, instance, is_create, row, **kwargs):
        values = {f: getattr(instance, f) for f in IMPORT_FIELDS if f != "member_number"}
        actor = kwargs.get("user")
        try:
            if is_create:
                demographics = {f: values.pop(f) for f in services.DEMOGRAPHIC_FIELDS}
                demographics = {k: v for k, v in demographics.items() if v not in (None, "")}
                member = enrollment_record(
                    source=EnrollmentSource.IMPORT, demographics=demographics, actor=actor, **values
                )
                instance.pk = member.pk
                instance.member_number = member.member_number
            else:
                current = Member.objects.get(pk=instance.pk)
                services.member_update(member=current, actor=actor, reason="CSV import", **values)
        except ApplicationError as exc:
            field = next(iter(exc.fields), "__all__")
            raise ValidationError({field: [f"{exc.message} ({exc.code})"]}) from exc
