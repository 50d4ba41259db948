"""CSV/XLSX import and export of coupons (django-import-export). An import is one call of
``offers.services.coupons.coupons_import`` with every row of the file (one batch, codes checked
together: a taken, repeated or malformed code refuses the whole file); rows are not written one by
one. Exports list the coupons with their member's number and what is left of them."""

from __future__ import annotations

from django.utils.dateparse import parse_datetime
from import_export import fields, resources

from loyalty.core import clock
from loyalty.core.errors import ApplicationError, ValidationFailed
from loyalty.ledger.selectors import program_default
from members.models import Member
from offers.models import Coupon, Offer
from offers.services.coupons import ImportedCoupon, coupons_import

IMPORT_COLUMNS = ("code", "max_uses", "member_number", "offer", "valid_from", "expires_at")


class CouponResource(resources.ModelResource):
    member_number = fields.Field(attribute="member__member_number", column_name="member_number", readonly=True)

    class Meta:
        model = Coupon
        fields = (
            "code",
            "status",
            "source",
            "max_uses",
            "uses_count",
            "member_number",
            "offer",
            "reward",
            "batch",
            "valid_from",
            "expires_at",
            "issued_at",
        )
        export_order = fields
        import_id_fields = ("code",)
        use_transactions = True
        report_skipped = True

    def before_import(self, dataset, **kwargs):
        """Import every row at once through the service (in the import's transaction: a dry run
        rolls it back)."""
        self.imported = None
        missing = {"code"} - set(dataset.headers or ())
        if missing:
            raise ValidationFailed("The file needs a 'code' column", code="import_columns_missing")
        rows = [_imported(dict(zip(dataset.headers, values, strict=False))) for values in dataset]
        name = f"Import {clock.now():%Y-%m-%d %H:%M}"
        try:
            self.imported = coupons_import(program=program_default(), rows=rows, name=name, actor=kwargs.get("user"))
        except ApplicationError as exc:
            detail = {k: v for k, v in exc.extra.items() if v}
            raise ValidationFailed(f"{exc.message} ({exc.code}) {detail}", code=exc.code) from exc

    def get_instance(self, instance_loader, row):
        return None  # every row is new: the service wrote it in before_import

    def skip_row(self, instance, original, row, import_validation_errors=None):
        return self.imported is None  # the file was refused whole (reported once, not per row)

    def import_instance(self, instance, row, **kwargs):
        instance.code = str(row.get("code") or "").strip().upper()

    def save_instance(self, instance, is_create, row, **kwargs):
        # written by coupons_import: only take the stored row's id for the report
        instance.pk = (
            Coupon.objects.filter(batch=self.imported, code=instance.code).values_list("pk", flat=True).first()
        )

    def get_import_fields(self):
        return [f for f in super().get_import_fields() if f.column_name in IMPORT_COLUMNS]


def _when(value):
    if value in (None, ""):
        return None
    if hasattr(value, "tzinfo"):
        return value
    parsed = parse_datetime(str(value).strip())
    if parsed is None or parsed.tzinfo is None:
        raise ValidationFailed(f"Not a date and time with its zone: {value!r}", code="invalid_datetime")
    return parsed


def _imported(row: dict) -> ImportedCoupon:
    member = None
    if number := str(row.get("member_number") or "").strip():
        member = Member.objects.filter(member_number=number).first()
        if member is None:
            raise ValidationFailed(f"No member {number}", code="member_not_found")
    offer = None
    if offer_id := str(row.get("offer") or "").strip():
        offer = Offer.objects.filter(pk=int(offer_id) if offer_id.isdigit() else 0).first()
        if offer is None:
            raise ValidationFailed(f"No offer {offer_id}", code="offer_not_found")
    max_uses = str(row.get("max_uses") or "1").strip()
    if not max_uses.isdigit() or int(max_uses) < 1:
        raise ValidationFailed(f"max_uses must be a whole number ≥ 1, not {max_uses!r}", code="invalid_max_uses")
    return ImportedCoupon(
        code=str(row.get("code") or ""),
        max_uses=int(max_uses),
        member=member,
        offer=offer,
        valid_from=_when(row.get("valid_from")),
        expires_at=_when(row.get("expires_at")),
    )
