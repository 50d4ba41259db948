"""Staff screens of rewards and coupons: every write through a service and audited; coupon
import through ``coupons_import`` (one call per file, refused whole); the cancel actions."""

from __future__ import annotations

import pytest
import tablib
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from loyalty.core.models import AuditEvent
from offers.models import Coupon, CouponBatch, Reward, RewardRedemption
from offers.resources import CouponResource
from offers.services.coupons import coupon_issue
from offers.services.rewards import reward_redeem
from tests.factories import MemberFactory
from tests.offers.conftest import reward_make
from tests.offers.test_rewards import member_with

pytestmark = pytest.mark.django_db


def client_as(role: str) -> Client:
    user = get_user_model().objects.create_user(f"staff-{role}", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def test_marketing_adds_a_reward_audited_with_its_eligibility(program):
    response = client_as("Marketing").post(
        reverse("admin:offers_reward_add"),
        {
            "program": program.pk,
            "name": "Free coffee",
            "description": "",
            "kind": "free_product",
            "is_active": "on",
            "points_cost": "250",
            "sku": "COF-1",
            "cost_to_business": "1.20",
            "coupon_valid_days": "30",
            "stock": "100",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    reward = Reward.objects.get(name="Free coffee")
    assert (reward.points_cost, reward.stock, reward.sku) == (250, 100, "COF-1")
    assert set(AuditEvent.objects.filter(target_id=str(reward.pk)).values_list("action", flat=True)) == {
        "reward.created",
        "reward.eligibility_changed",
    }


def test_reward_list_shows_redeemed_and_cost_figures(program):
    reward = reward_make(name="Mug", points_cost=100, cost_to_business="3.50")
    member = member_with(program, 1000)
    for key in ("a", "b"):
        reward_redeem(member=member, reward=reward, channel="test", idempotency_key=key)
    response = client_as("Analyst").get(reverse("admin:offers_reward_changelist"))
    row = next(line for line in response.content.decode().splitlines() if "field-total_cost" in line)
    assert "7.00" in row
    assert "field-redeemed" in response.content.decode()


def test_support_cannot_add_a_reward(program):
    assert client_as("Support").get(reverse("admin:offers_reward_add")).status_code == 403


def test_marketing_generates_a_batch_through_the_service(program):
    response = client_as("Marketing").post(
        reverse("admin:offers_couponbatch_add"),
        {"program": program.pk, "name": "Summer", "prefix": "SUM", "code_length": "8", "count": "25", "max_uses": "1"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    batch = CouponBatch.objects.get(name="Summer")
    assert Coupon.objects.filter(batch=batch, code__startswith="SUM").count() == 25
    assert AuditEvent.objects.filter(action="coupon_batch.generated").exists()


def test_batch_form_refuses_a_bad_prefix_as_a_form_error(program):
    response = client_as("Marketing").post(
        reverse("admin:offers_couponbatch_add"),
        {"program": program.pk, "name": "Bad", "prefix": "a b", "code_length": "8", "count": "5", "max_uses": "1"},
    )
    assert response.status_code == 200 and "invalid_code_prefix" in response.content.decode()
    assert not CouponBatch.objects.exists()


def test_coupon_import_is_one_service_call_and_a_taken_code_refuses_the_file(program):
    member = MemberFactory()
    data = tablib.Dataset(
        ["wel-1", "1", member.member_number, "", "", ""],
        ["WEL-2", "3", "", "", "", "2030-01-01T00:00:00Z"],
        headers=["code", "max_uses", "member_number", "offer", "valid_from", "expires_at"],
    )
    result = CouponResource().import_data(data, dry_run=False)
    assert not result.has_errors(), [e.error for e in result.base_errors]
    assert dict(Coupon.objects.values_list("code", "max_uses")) == {"WEL-1": 1, "WEL-2": 3}
    assert Coupon.objects.get(code="WEL-1").member_id == member.pk
    assert CouponBatch.objects.count() == 1
    again = CouponResource().import_data(
        tablib.Dataset(["NEW-1"], ["wel-2"], headers=["code"]), dry_run=False, raise_errors=False
    )
    assert again.has_errors() and "invalid_coupon_codes" in str(again.base_errors[0].error)
    assert not Coupon.objects.filter(code="NEW-1").exists()


def test_coupon_export_lists_codes_with_member_numbers(program):
    member = MemberFactory()
    coupon = coupon_issue(program=program, source="batch", member=member)
    exported = CouponResource().export()
    assert exported.dict[0]["code"] == coupon.code and exported.dict[0]["member_number"] == member.member_number


def test_marketing_cancels_a_reward_redemption_through_the_service_with_a_reason(program):
    member = member_with(program, 300)
    found = reward_redeem(member=member, reward=reward_make(points_cost=100), channel="test", idempotency_key="x")
    response = client_as("Marketing").post(
        reverse("admin:offers_rewardredemption_changelist"),
        {"action": "cancel_reward_redemptions", "_selected_action": [found.pk], "apply": "1", "reason": "asked"},
    )
    assert response.status_code == 302
    assert RewardRedemption.objects.get(pk=found.pk).status == "cancelled"
    assert AuditEvent.objects.get(action="reward_redemption.cancelled").reason == "asked"


def test_support_may_not_cancel_a_reward_redemption(program):
    member = member_with(program, 300)
    found = reward_redeem(member=member, reward=reward_make(points_cost=100), channel="test", idempotency_key="x")
    client_as("Support").post(
        reverse("admin:offers_rewardredemption_changelist"),
        {"action": "cancel_reward_redemptions", "_selected_action": [found.pk], "apply": "1", "reason": "asked"},
    )
    assert RewardRedemption.objects.get(pk=found.pk).status == "completed"


def test_reward_image_is_stored_through_the_storage_api(program, settings, tmp_path):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    settings.MEDIA_ROOT = str(tmp_path)
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, format="PNG")
    upload = SimpleUploadedFile("mug.png", buffer.getvalue(), content_type="image/png")
    response = client_as("Marketing").post(
        reverse("admin:offers_reward_add"),
        {
            "program": program.pk,
            "name": "Mug",
            "kind": "free_product",
            "points_cost": "90",
            "cost_to_business": "2",
            "coupon_valid_days": "30",
            "image": upload,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    reward = Reward.objects.get(name="Mug")
    assert reward.image.name.startswith("rewards/") and (tmp_path / reward.image.name).exists()
    assert reward.image.url == f"/media/{reward.image.name}"
