"""For any sequence of credits, debits, returns, refunds, transfers, adjustments, clock moves,
maturation and expiry, purchases through the purchase workflow meeting a budgeted bonus offer,
reward redemptions and their cancels, coupon uses and their cancels, and a campaign promoting the
offer and the reward: every transaction balances, balance == sum(entries) == sum(lots) (minus debt),
no lot below zero, no lot consumed past its expiry, no event twice in the outbox (the whole-database
check, ``ledger.selectors.invariants``); reward stock, coupon use counts and offer budgets agree with
their rows, and the campaign's attribution counts exactly the reward redemptions still standing.

``LedgerMachine`` is shared: ``make test`` runs it small (below), ``make verify`` runs it with
≥ 200 examples × 50 steps (tests/verify/test_03_ledger_machine.py). Each example runs in its own
savepoint, rolled back at its end, so the invariants scan only that example's rows."""

import contextlib
import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from loyalty.activity.services import purchase_record
from loyalty.campaigns.models import Campaign
from loyalty.campaigns.selectors.attribution import attribution_window, campaign_arms
from loyalty.campaigns.services.campaigns import campaign_launch, campaign_save
from loyalty.core import clock
from loyalty.core.errors import ApplicationError
from loyalty.ledger import services
from loyalty.ledger.models import Purchase, Redemption, RedemptionStatus
from loyalty.ledger.selectors.invariants import ledger_invariant_checks
from loyalty.messaging.models import Content, Purpose
from offers.models import (
    BenefitKind,
    Coupon,
    CouponUse,
    Offer,
    OfferRedemption,
    OfferStatus,
    RedemptionState,
    Reward,
    RewardKind,
    RewardRedemption,
)
from offers.services.coupons import coupon_redeem, coupon_use_cancel
from offers.services.rewards import reward_redeem, reward_redemption_cancel
from tests.factories import StaffFactory
from tests.ledger.conftest import T0, make_account, make_program

_ids = itertools.count()

# The machine's reward, coupons and offer against their rows, in one statement (after every step).
AGREE_SQL = """
SELECT
  (SELECT array_agg(id) FROM offers_rewardredemption WHERE reward_id = %(reward)s AND status = 'completed'),
  (SELECT stock FROM offers_reward WHERE id = %(reward)s),
  (SELECT COUNT(*) FROM offers_rewardredemption rr JOIN ledger_redemption r ON r.id = rr.redemption_id
    WHERE rr.reward_id = %(reward)s AND (r.points <> rr.points OR r.status <> rr.status)),
  (SELECT COUNT(*) FROM offers_coupon c WHERE c.reward_id = %(reward)s AND (c.uses_count > c.max_uses OR c.uses_count <>
    (SELECT COUNT(*) FROM offers_couponuse u WHERE u.coupon_id = c.id AND u.status = 'completed'))),
  (SELECT COUNT(*) FROM offers_coupon c JOIN offers_rewardredemption rr ON rr.coupon_id = c.id
    WHERE c.reward_id = %(reward)s AND rr.status = 'cancelled' AND c.status <> 'cancelled'),
  (SELECT points_issued FROM offers_offer WHERE id = %(offer)s),
  (SELECT redemptions_count FROM offers_offer WHERE id = %(offer)s),
  (SELECT points_budget FROM offers_offer WHERE id = %(offer)s),
  (SELECT COALESCE(SUM(points), 0) FROM offers_offerredemption WHERE offer_id = %(offer)s AND status = 'completed'),
  (SELECT COUNT(*) FROM offers_offerredemption WHERE offer_id = %(offer)s AND status = 'completed')
"""


class LedgerMachine(RuleBasedStateMachine):
    examples = 0  # examples and steps run (the verify test reports steps/s)
    steps = 0

    def __init__(self):
        super().__init__()
        type(self).examples += 1
        # a savepoint in the test's transaction, rolled back in teardown: each example starts from the
        # same database (a savepoint, not an atomic block: the workflows' durable blocks still run)
        self._example = transaction.savepoint()

    @initialize(
        return_policy=st.sampled_from(["only_pending", "within_balance", "allow_negative"]),
        expiry=st.sampled_from([("never", 0), ("fixed_months", 1), ("inactivity_months", 2)]),
        pending_days=st.sampled_from([0, 3]),
        offer=st.tuples(st.integers(1, 60), st.sampled_from([None, 100, 1000])),  # bonus points, points budget
        reward=st.tuples(st.integers(10, 300), st.integers(1, 5)),  # points cost, stock
    )
    def setup(self, return_policy, expiry, pending_days, offer, reward):
        clock.set_now(T0)
        self.program = make_program(
            return_policy=return_policy,
            expiry_policy=expiry[0],
            expiry_months=expiry[1],
            pending_days=pending_days,
            refund_grace_days=5,
        )
        self.accounts = [make_account(self.program), make_account(self.program)]
        self.staff = StaffFactory(username="machine-staff", password=None)  # no password hashing per example
        now = clock.now()
        self.offer = Offer.objects.create(
            program=self.program,
            name="Bonus on food",
            status=OfferStatus.ACTIVE,
            benefit_kind=BenefitKind.BONUS_FIXED,
            benefit_points=offer[0],
            scope_categories=["food"],
            points_budget=offer[1],
            created_at=now,
            updated_at=now,
        )
        self.stock = reward[1]
        self.reward = Reward.objects.create(
            program=self.program,
            name="Voucher",
            kind=RewardKind.AMOUNT_COUPON,
            points_cost=reward[0],
            value=5,
            cost_to_business=Decimal("3.00"),
            stock=self.stock,
            created_at=now,
            updated_at=now,
        )
        self.campaign = None
        self.attribution_dirty = True  # attribution re-checked after steps that can change it
        self.standing: dict[int, dt.datetime] = {}  # reward redemptions not cancelled -> when

    def _try(self, fn, **kwargs):
        with contextlib.suppress(ApplicationError):  # refused actions must change nothing; the invariant checks it
            fn(**kwargs)

    @rule(who=st.integers(0, 1), points=st.integers(1, 300), pending=st.booleans())
    def credit(self, who, points, pending):
        services.points_credit(account=self.accounts[who], points=points, reason="earn", pending=pending)

    @rule(who=st.integers(0, 1), amount=st.integers(1, 400), points=st.integers(0, 400))
    def purchase(self, who, amount, points):
        self.bought = True
        account = self.accounts[who]
        purchase = services.purchase_create(
            program=self.program,
            member=account.member,
            external_id=f"p{next(_ids)}",
            occurred_at=clock.now(),
            lines=[{"sku": "A", "quantity": 4, "amount": str(amount)}],
        )
        if points:
            services.points_credit(account=account, points=points, reason="purchase", purchase=purchase, pending=True)

    # preconditions read the machine's own flags, not the database: they are evaluated for every rule at every step
    @precondition(lambda self: getattr(self, "bought", False))
    @rule(pick=st.integers(0, 10_000), quantity=st.integers(1, 5))
    def return_lines(self, pick, quantity):
        purchases = list(Purchase.objects.filter(program=self.program).order_by("pk"))
        if not purchases:
            return
        purchase = purchases[pick % len(purchases)]
        self._try(
            services.purchase_return_clawback,
            purchase=purchase,
            external_id=f"r{next(_ids)}",
            lines=[{"sku": "A", "quantity": quantity}],
        )

    @rule(who=st.integers(0, 1), points=st.integers(1, 300))
    def redeem(self, who, points):
        self.burned = True
        self._try(services.points_redeem, account=self.accounts[who], points=points)

    def _points_redemptions(self):
        """Open redemptions of points (a reward's come back only with the reward: ``cancel_reward``)."""
        return Redemption.objects.filter(
            account__program=self.program, status=RedemptionStatus.COMPLETED, reward_redemption__isnull=True
        ).order_by("pk")

    @precondition(lambda self: getattr(self, "burned", False))
    @rule(pick=st.integers(0, 10_000))
    def refund(self, pick):
        open_ones = list(self._points_redemptions())
        if not open_ones:
            return
        services.points_refund(redemption=open_ones[pick % len(open_ones)])

    @rule(points=st.integers(1, 300), direction=st.booleans())
    def transfer(self, points, direction):
        source, target = self.accounts if direction else self.accounts[::-1]
        self._try(services.points_transfer, source=source, target=target, points=points, reason="gift")

    @rule(who=st.integers(0, 1), points=st.integers(-200, 200).filter(bool))
    def adjust(self, who, points):
        self._try(services.points_adjust, account=self.accounts[who], points=points, reason="fix", actor=self.staff)

    @rule(who=st.integers(0, 1), amount=st.integers(1, 400), food=st.booleans())
    def shop(self, who, amount, food):
        """A purchase through the workflow: earning rules and the offer's bonus in one credit."""
        self.attribution_dirty = self.bought = True
        self._try(
            purchase_record,
            partner=None,
            member=self.accounts[who].member,
            program_name=self.program.name,
            external_id=f"w{next(_ids)}",
            occurred_at=clock.now(),
            lines=[{"sku": "A", "category": "food" if food else "home", "quantity": 4, "amount": Decimal(amount)}],
        )

    @rule(who=st.integers(0, 1))
    def redeem_reward(self, who):
        self.attribution_dirty = True
        try:
            redeemed = reward_redeem(
                member=self.accounts[who].member, reward=self.reward, channel="portal", idempotency_key=f"k{next(_ids)}"
            )
        except ApplicationError:
            return
        self.standing[redeemed.pk] = redeemed.created_at

    @precondition(lambda self: getattr(self, "standing", None))
    @rule(pick=st.integers(0, 10_000))
    def cancel_reward(self, pick):
        self.attribution_dirty = True
        redemption = RewardRedemption.objects.get(pk=sorted(self.standing)[pick % len(self.standing)])
        try:
            reward_redemption_cancel(reward_redemption=redemption, actor=self.staff, reason="machine")
        except ApplicationError:
            return  # its coupon was used
        del self.standing[redemption.pk]

    @precondition(lambda self: getattr(self, "standing", None))
    @rule(pick=st.integers(0, 10_000))
    def use_coupon(self, pick):
        self.coupon_used = True
        coupons = list(Coupon.objects.filter(reward=self.reward).order_by("pk").select_related("member"))
        coupon = coupons[pick % len(coupons)]
        self._try(
            coupon_redeem,
            code=coupon.code,
            member=coupon.member,
            basket_total=Decimal("20"),
            idempotency_key=f"u{next(_ids)}",
        )

    @precondition(lambda self: getattr(self, "coupon_used", False))
    @rule(pick=st.integers(0, 10_000))
    def cancel_coupon_use(self, pick):
        uses = list(CouponUse.objects.filter(coupon__reward=self.reward).order_by("pk"))
        if not uses:
            return
        self._try(coupon_use_cancel, coupon_use=uses[pick % len(uses)])

    @precondition(lambda self: hasattr(self, "program") and self.campaign is None)
    @rule()
    def launch_campaign(self):
        """A campaign promoting the offer and the reward to both members (attribution reads them)."""
        now = clock.now()
        content = Content.objects.create(
            name="Treats", purpose=Purpose.MARKETING, subject="Hi", body="Points!", created_at=now, updated_at=now
        )
        campaign = Campaign(program=self.program, name="Treats", channels=["email"], holdout_percent=0, content=content)
        campaign_save(campaign=campaign, actor="machine")
        campaign.offers.set([self.offer])
        campaign.rewards.set([self.reward])
        self.campaign = campaign_launch(campaign=campaign, actor="machine")
        self.attribution_dirty = True

    @rule(days=st.integers(1, 40))
    def advance(self, days):
        clock.advance(dt.timedelta(days=days))

    @rule()
    def mature(self):
        services.mature_pending_lots()

    @rule()
    def expire(self):
        services.expire_due_lots()

    @invariant()
    def ledger_is_exact(self):
        type(self).steps += 1
        if not hasattr(self, "program"):
            return
        for account in self.accounts:
            account.refresh_from_db()
        violated = [c for c in ledger_invariant_checks() if c.violations]
        assert not violated, violated

    @invariant()
    def offers_rewards_coupons_agree(self):
        if not hasattr(self, "program"):
            return
        with connection.cursor() as cursor:
            cursor.execute(AGREE_SQL, {"reward": self.reward.pk, "offer": self.offer.pk})
            (completed, stock, unmatched, miscounted, uncancelled, issued, counted, budget, given, given_n) = (
                cursor.fetchone()
            )
        assert sorted(completed or []) == sorted(self.standing)
        assert stock + len(self.standing) == self.stock  # an item out per redemption standing
        assert unmatched == 0  # a reward redemption stands exactly while its ledger redemption does, same points
        assert miscounted == 0  # a coupon counts its uses not cancelled, never past max_uses
        assert uncancelled == 0  # a cancelled reward redemption's coupon is cancelled
        if budget is not None:  # the offer's counters are its redemptions, within its budget
            assert issued == given <= budget
            assert counted == given_n
        if self.campaign is not None and self.attribution_dirty:
            # attribution: the reward redemptions standing in its window, the offer's points in it
            self.attribution_dirty = False
            start, end = attribution_window(self.campaign)
            arms = campaign_arms(self.campaign)
            standing = sum(1 for at in self.standing.values() if start <= at < end)
            assert sum(arm.reward_cost for arm in arms) == standing * self.reward.cost_to_business
            points = (
                OfferRedemption.objects.filter(
                    offer=self.offer, status=RedemptionState.COMPLETED, created_at__gte=start, created_at__lt=end
                ).aggregate(p=Sum("points"))["p"]
                or 0
            )
            assert sum(arm.points_cost for arm in arms) == (points * self.program.point_value).quantize(Decimal("0.01"))

    def teardown(self):
        clock.set_now(None)
        transaction.savepoint_rollback(self._example)


@pytest.mark.django_db
def test_ledger_invariants_hold_for_any_sequence_of_operations():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=20, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
