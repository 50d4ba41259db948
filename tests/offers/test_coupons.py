"""Coupon lifecycle (offers.services.coupons): batches, import, validate (what it gives, why
not), redeem (uses within max_uses, offer limit, idempotency), cancel a use, cancel a coupon."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from loyalty.core import clock
from loyalty.core.errors import ApplicationError, Conflict, ValidationFailed
from loyalty.core.models import AuditEvent
from loyalty.partners.models import OutboxEvent
from loyalty.partners.services import partner_ensure
from offers.models import BenefitKind, ConditionKind, Coupon, CouponUse, Offer, OfferRedemption
from offers.selectors.catalog import discount_on
from offers.services.coupons import (
    ImportedCoupon,
    coupon_batch_generate,
    coupon_cancel,
    coupon_issue,
    coupon_redeem,
    coupon_use_cancel,
    coupon_validate,
    coupons_import,
)
from tests.factories import MemberFactory, StaffFactory
from tests.offers.conftest import offer_make, reward_make

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)


def code_error(fn, **kw) -> str:
    with pytest.raises(ApplicationError) as caught:
        fn(**kw)
    return caught.value.code


def discount_offer(**kw) -> Offer:
    values = {"benefit_kind": BenefitKind.AMOUNT_COUPON, "benefit_value": Decimal("5"), "benefit_points": None}
    values.update(kw)
    return offer_make(**values)


@pytest.mark.django_db
def test_batch_generates_count_unique_codes_with_prefix_and_length_and_is_audited(program):
    staff = StaffFactory()
    batch = coupon_batch_generate(
        program=program, name="Spring", count=500, prefix="spr-", length=8, max_uses=3, actor=staff
    )
    codes = list(Coupon.objects.filter(batch=batch).values_list("code", flat=True))
    assert len(codes) == len(set(codes)) == 500
    assert all(c.startswith("SPR-") and len(c) == 12 for c in codes)
    assert set(Coupon.objects.filter(batch=batch).values_list("max_uses", "source")) == {(3, "batch")}
    assert AuditEvent.objects.filter(action="coupon_batch.generated").count() == 1


@pytest.mark.django_db
def test_batch_skips_codes_already_taken_and_still_writes_count(program, monkeypatch):
    taken = coupon_issue(program=program, source="batch", prefix="X", length=6)
    # the first draw only checks prefix and length; then a taken code (in another case) and two free ones
    draws = iter(["XCHECKS", taken.code.lower(), "XAAAAAA", "XBBBBBB"])
    monkeypatch.setattr("offers.services.coupons.coupon_code_generate", lambda **kw: next(draws))
    batch = coupon_batch_generate(program=program, name="Clash", count=2, prefix="X", length=6)
    assert sorted(Coupon.objects.filter(batch=batch).values_list("code", flat=True)) == ["XAAAAAA", "XBBBBBB"]


@pytest.mark.django_db
def test_batch_refuses_bad_input_with_codes(program):
    assert code_error(coupon_batch_generate, program=program, name="n", count=0) == "invalid_count"
    assert code_error(coupon_batch_generate, program=program, name="n", count=1, length=3) == "invalid_code_length"
    assert code_error(coupon_batch_generate, program=program, name="n", count=1, prefix="a b") == "invalid_code_prefix"
    assert not Coupon.objects.exists()


@pytest.mark.django_db
def test_import_upper_cases_codes_and_refuses_taken_or_repeated_ones_whole(program):
    coupon_issue(program=program, source="batch")
    existing = Coupon.objects.get().code
    batch = coupons_import(program=program, name="file", rows=[ImportedCoupon(code="abc-123"), ImportedCoupon("Q9")])
    assert sorted(Coupon.objects.filter(batch=batch).values_list("code", flat=True)) == ["ABC-123", "Q9"]
    with pytest.raises(ValidationFailed) as caught:
        coupons_import(
            program=program,
            name="bad",
            rows=[ImportedCoupon(existing.lower()), ImportedCoupon("N1"), ImportedCoupon("n1")],
        )
    assert caught.value.code == "invalid_coupon_codes"
    assert caught.value.extra["taken"] == [existing] and caught.value.extra["repeated"] == ["N1"]
    assert Coupon.objects.count() == 3


def test_discount_amount_is_capped_by_the_basket_and_percent_rounds_half_up():
    assert discount_on(kind="amount", value=Decimal("5"), basket_total=Decimal("3.20")) == Decimal("3.20")
    assert discount_on(kind="amount", value=Decimal("5"), basket_total=Decimal("30")) == Decimal("5.00")
    assert discount_on(kind="percent", value=Decimal("15"), basket_total=Decimal("10.10")) == Decimal("1.52")
    assert discount_on(kind="free_item", value=None, basket_total=Decimal("10")) is None


@pytest.mark.django_db
def test_validate_says_what_a_reward_coupon_gives_on_the_basket(program):
    member = MemberFactory()
    reward = reward_make(kind="percent_coupon", value=20)
    coupon = coupon_issue(program=program, source="reward", reward=reward, member=member)
    check = coupon_validate(code=coupon.code.lower(), member=member, basket_total=Decimal("45.00"))
    assert (check.benefit.kind, check.benefit.value, check.benefit.discount, check.uses_left) == (
        "percent",
        20,
        Decimal("9.00"),
        1,
    )


@pytest.mark.django_db
def test_validate_free_item_from_an_offer_gives_the_sku(program):
    offer = discount_offer(benefit_kind=BenefitKind.FREE_ITEM, benefit_value=None, benefit_sku="MILK-1")
    coupon = coupon_issue(program=program, source="offer", offer=offer)
    check = coupon_validate(code=coupon.code, member=MemberFactory())
    assert (check.benefit.kind, check.benefit.sku, check.benefit.discount) == ("free_item", "MILK-1", None)


@pytest.mark.django_db
def test_validate_refusals_have_stable_codes(program):
    clock.set_now(NOW)
    member, other = MemberFactory(), MemberFactory()
    issue = lambda **kw: coupon_issue(program=program, source="batch", **kw).code  # noqa: E731
    assert code_error(coupon_validate, code="NOPE") == "coupon_not_found"
    assert code_error(coupon_validate, code=issue(expires_at=NOW - dt.timedelta(seconds=1))) == "coupon_expired"
    started_later = issue()
    Coupon.objects.filter(code=started_later).update(valid_from=NOW + dt.timedelta(days=1))
    assert code_error(coupon_validate, code=started_later) == "coupon_not_started"
    cancelled = issue()
    Coupon.objects.filter(code=cancelled).update(status="cancelled")
    assert code_error(coupon_validate, code=cancelled) == "coupon_cancelled"
    used = issue()
    Coupon.objects.filter(code=used).update(uses_count=1)
    assert code_error(coupon_validate, code=used) == "coupon_exhausted"
    bound = issue(member=member)
    assert code_error(coupon_validate, code=bound, member=other) == "coupon_member_mismatch"
    assert code_error(coupon_validate, code=bound) == "coupon_member_mismatch"
    offer_code = coupon_issue(program=program, source="offer", offer=discount_offer()).code
    assert code_error(coupon_validate, code=offer_code) == "coupon_member_required"
    min_spend = discount_offer(condition_kind=ConditionKind.MIN_SPEND, condition_min_spend=Decimal("50"))
    spend_code = coupon_issue(program=program, source="offer", offer=min_spend).code
    assert (
        code_error(coupon_validate, code=spend_code, member=member, basket_total=Decimal("49.99"))
        == "coupon_min_spend_not_met"
    )
    assert coupon_validate(code=spend_code, member=member, basket_total=Decimal("50")).benefit.discount == 5
    Offer.objects.filter(pk=min_spend.pk).update(status="paused")
    assert (
        code_error(coupon_validate, code=spend_code, member=member, basket_total=Decimal("60")) == "coupon_offer_ended"
    )


@pytest.mark.django_db
def test_coupon_of_a_member_another_partner_may_not_read_is_not_found_for_it(program):
    member = MemberFactory()
    coupon = coupon_issue(program=program, source="batch", member=member)
    stranger = partner_ensure(name="Stranger")
    assert code_error(coupon_validate, code=coupon.code, partner=stranger, member=member) == "coupon_not_found"


@pytest.mark.django_db
def test_coupon_of_a_reward_another_partner_honours_is_not_found_for_it(program):
    reward = reward_make(partner=partner_ensure(name="Honours"))
    coupon = coupon_issue(program=program, source="reward", reward=reward)
    assert code_error(coupon_validate, code=coupon.code, partner=partner_ensure(name="Other")) == "coupon_not_found"
    assert coupon_validate(code=coupon.code, partner=reward.partner).coupon.pk == coupon.pk


@pytest.mark.django_db
def test_redeem_counts_a_use_records_it_and_the_event(program):
    coupon = coupon_issue(program=program, source="reward", reward=reward_make(value=5), max_uses=2)
    use = coupon_redeem(code=coupon.code, basket_total=Decimal("12"), purchase_external_id="till-1")
    assert Coupon.objects.get(pk=coupon.pk).uses_count == 1
    assert (use.discount, use.purchase_external_id, use.status) == (Decimal("5.00"), "till-1", "completed")
    assert OutboxEvent.objects.filter(event_type="coupon.redeemed").get().payload["coupon_use_id"] == use.pk


@pytest.mark.django_db
def test_redeem_past_max_uses_is_coupon_exhausted(program):
    coupon = coupon_issue(program=program, source="batch", max_uses=2)
    coupon_redeem(code=coupon.code)
    coupon_redeem(code=coupon.code)
    with pytest.raises(Conflict) as caught:
        coupon_redeem(code=coupon.code)
    assert caught.value.code == "coupon_exhausted"
    assert CouponUse.objects.count() == 2


@pytest.mark.django_db
def test_redeem_same_key_returns_the_first_use(program):
    coupon = coupon_issue(program=program, source="batch", max_uses=5)
    first = coupon_redeem(code=coupon.code, idempotency_key="k")
    assert coupon_redeem(code=coupon.code, idempotency_key="k").pk == first.pk
    assert Coupon.objects.get(pk=coupon.pk).uses_count == 1
    other = coupon_issue(program=program, source="batch")
    assert code_error(coupon_redeem, code=other.code, idempotency_key="k") == "idempotency_key_reused"


@pytest.mark.django_db
def test_offer_coupon_use_is_an_offer_redemption_within_max_redemptions(program):
    member = MemberFactory()
    offer = discount_offer(max_redemptions=1)
    first = coupon_issue(program=program, source="offer", offer=offer)
    second = coupon_issue(program=program, source="offer", offer=offer)
    coupon_redeem(code=first.code, member=member)
    assert Offer.objects.get(pk=offer.pk).redemptions_count == 1
    assert OfferRedemption.objects.filter(offer=offer, member=member, coupon=first).count() == 1
    assert code_error(coupon_redeem, code=second.code, member=member) == "offer_exhausted"
    assert Coupon.objects.get(pk=second.pk).uses_count == 0  # nothing changed on refusal


@pytest.mark.django_db
def test_cancel_a_use_gives_it_back_and_the_offer_count_too(program):
    member = MemberFactory()
    offer = discount_offer(max_redemptions=5)
    coupon = coupon_issue(program=program, source="offer", offer=offer)
    use = coupon_redeem(code=coupon.code, member=member)
    cancelled = coupon_use_cancel(coupon_use=use)
    assert cancelled.status == "cancelled"
    assert Coupon.objects.get(pk=coupon.pk).uses_count == 0
    assert Offer.objects.get(pk=offer.pk).redemptions_count == 0
    assert OfferRedemption.objects.get().status == "cancelled"
    coupon_use_cancel(coupon_use=use)  # again: nothing more
    assert Coupon.objects.get(pk=coupon.pk).uses_count == 0
    assert OutboxEvent.objects.filter(event_type="coupon.redemption_cancelled").count() == 1
    coupon_redeem(code=coupon.code, member=member)  # the use is back


@pytest.mark.django_db
def test_staff_cancel_a_coupon_audited_and_not_a_reward_coupon(program):
    staff = StaffFactory()
    coupon = coupon_issue(program=program, source="batch")
    coupon_cancel(coupon=coupon, actor=staff, reason="leaked")
    assert Coupon.objects.get(pk=coupon.pk).status == "cancelled"
    assert AuditEvent.objects.filter(action="coupon.cancelled").count() == 1
    from offers.services.rewards import reward_redeem
    from tests.offers.test_rewards import member_with

    found = reward_redeem(member=member_with(program, 200), reward=reward_make(), channel="test", idempotency_key="r-1")
    assert code_error(coupon_cancel, coupon=found.coupon, actor=staff) == "coupon_of_reward"
