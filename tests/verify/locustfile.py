"""The load of promise 15 (tests/verify/test_11_load.py runs it headless): each simulated user is
one partner till and one member signed in to the portal, mixing partner reads (member, balance),
purchases (some meeting the live offer), partial returns of its own purchases, points redemptions,
reward redemptions (with an Idempotency-Key), coupon uses (the shared batch's coupons and the
coupons its rewards gave) and portal page views.

The seed (members, API key, reward, coupons, portal sessions of signed-in members) comes from the JSON file named by
LOAD_SEED, written by the test. A refusal the scenario expects (409 with one of the codes named
per request, e.g. ``insufficient_points``) is marked a success; anything else not 2xx is a failure.

    LOAD_SEED=seed.json locust -f tests/verify/locustfile.py --headless -u 32 -r 8 -t 5m --host http://127.0.0.1:18140
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import random
import uuid

from locust import HttpUser, between, events, task

SEED: dict = {}
PORTAL_PAGES = ["/home/", "/history/", "/rewards/", "/wallet/", "/offers/", "/card/"]
WAIT = (0.5, 1.5)  # seconds a member waits between actions: 32 users offer about 30 requests/s
_users = itertools.count()
EXPECTED: dict[str, int] = {}  # "409 <code>" -> how many (written beside the seed when locust quits)


@events.init.add_listener
def _load_seed(environment, **kwargs):
    with open(os.environ["LOAD_SEED"]) as seed:
        SEED.update(json.load(seed))


@events.quitting.add_listener
def _write_expected(environment, **kwargs):
    with open(os.environ["LOAD_SEED"] + ".expected.json", "w") as out:
        json.dump(EXPECTED, out)


class Member(HttpUser):
    wait_time = between(*WAIT)

    def on_start(self):
        self.number = next(_users)
        self.run = uuid.uuid4().hex[:8]
        self.api = {"Authorization": f"Api-Key {SEED['key']}", "Content-Type": "application/json"}
        self.purchases: list[dict] = []  # this till's purchases: [external_id, quantity left to return]
        self.coupons: list[str] = []  # coupons its reward redemptions gave, not used yet
        self.counter = itertools.count()
        login = SEED["logins"][self.number % len(SEED["logins"])]
        self.member_number = login["member_number"]
        self.client.cookies.set("sessionid", login["session"])  # signed in (the test wrote the session)

    def _ext(self, kind: str) -> str:
        return f"{kind}-{self.run}-{self.number}-{next(self.counter)}"

    def _member(self) -> str:
        """Mostly its own member, else any seeded member (accounts shared between tills)."""
        return self.member_number if random.random() < 0.5 else random.choice(SEED["members"])  # noqa: S311

    def _post(self, path: str, body: dict, *, name: str, expected: tuple[str, ...] = (), headers=None):
        with self.client.post(
            path, data=json.dumps(body), headers={**self.api, **(headers or {})}, name=name, catch_response=True
        ) as response:
            if response.status_code in (200, 201):
                response.success()
                return response.json()
            code = _code(response)
            if response.status_code == 409 and code in expected:
                response.success()  # a refusal the scenario expects
                EXPECTED[f"409 {code}"] = EXPECTED.get(f"409 {code}", 0) + 1
            else:
                response.failure(f"{response.status_code} {code}")
        return None

    @task(3)
    def partner_reads(self):
        number = self._member()
        self.client.get(f"/api/v1/members/{number}/balance/", headers=self.api, name="/api/v1/members/[n]/balance/")
        if random.random() < 0.3:  # noqa: S311
            self.client.get(f"/api/v1/members/{number}/", headers=self.api, name="/api/v1/members/[n]/")

    @task(5)
    def purchase(self):
        external_id = self._ext("p")
        food = random.random() < 0.5  # noqa: S311 - half meet the offer (a bonus on food)
        lines = [{"sku": "BREAD", "category": "food" if food else "home", "quantity": "2", "amount": "24.00"}]
        lines.append({"sku": "SOAP", "category": "home", "quantity": "1", "amount": "8.50"})
        body = {
            "member_number": self._member(),
            "external_id": external_id,
            "occurred_at": datetime.datetime.now(datetime.UTC).isoformat(),
            "total": "32.50",
            "store": "S1",
            "lines": lines,
        }
        if self._post("/api/v1/purchases/", body, name="/api/v1/purchases/") is not None:
            self.purchases.append([external_id, 2])

    @task(2)
    def return_part(self):
        open_ones = [p for p in self.purchases if p[1] > 0]
        if not open_ones:
            return
        purchase = random.choice(open_ones)  # noqa: S311
        purchase[1] -= 1  # one of the two breads back, at most twice
        body = {
            "purchase_external_id": purchase[0],
            "external_id": self._ext("r"),
            "lines": [{"sku": "BREAD", "quantity": "1"}],
        }
        self._post("/api/v1/returns/", body, name="/api/v1/returns/")

    @task(2)
    def redeem_points(self):
        body = {"member_number": self._member(), "points": random.choice([20, 50, 150]), "external_id": self._ext("d")}  # noqa: S311
        self._post("/api/v1/redemptions/", body, name="/api/v1/redemptions/", expected=("insufficient_points",))

    @task(1)
    def redeem_reward(self):
        found = self._post(
            f"/api/v1/members/{self.member_number}/rewards/{SEED['reward']}/redeem/",
            {},
            name="/api/v1/members/[n]/rewards/[id]/redeem/",
            headers={"Idempotency-Key": self._ext("k")},
            expected=("insufficient_points", "out_of_stock", "reward_member_limit_reached"),
        )
        if found and found.get("coupon"):
            self.coupons.append(found["coupon"]["code"])

    @task(2)
    def use_coupon(self):
        own = self.coupons and random.random() < 0.5  # noqa: S311
        code = self.coupons.pop() if own else random.choice(SEED["coupons"])  # noqa: S311
        body = {
            "code": code,
            "member_number": self.member_number,
            "basket_total": "40.00",
            "purchase_external_id": self._ext("c"),
        }
        self._post(
            "/api/v1/coupons/redeem/",
            body,
            name="/api/v1/coupons/redeem/",
            headers={"Idempotency-Key": self._ext("u")},
            expected=("coupon_exhausted",),
        )

    @task(5)
    def portal_page(self):
        page = random.choice(PORTAL_PAGES)  # noqa: S311
        with self.client.get(page, name=page, catch_response=True, allow_redirects=False) as response:
            if response.status_code != 200:  # a redirect to the login page would be a lost session
                response.failure(f"{response.status_code}")


def _code(response) -> str:
    try:
        return response.json().get("code", "")
    except ValueError:
        return ""
