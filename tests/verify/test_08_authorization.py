"""Promise 12: the authorization matrix, generated from the URL configuration. Every URL pattern
(``get_resolver()``, walked whole) is classified below; a new pattern nobody classified fails the
first test. Then every pattern is requested by every principal it concerns: anonymous visitors
(API: 401; portal: the portal login; staff pages and the admin: the admin login), a partner's API
key outside the API (no session: the same login pages, docs/permissions.md), another partner
(another partner's object: 404 with none of its data), another member (another member's object on
the portal: 404), and each staff role on every admin screen × view/add/change/delete against the
written role matrix (tests/core/test_permissions.py MATRIX, docs/permissions.md)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from loyalty.imports.management.commands.load_demo import demo_program_configure
from loyalty.ledger.models import Entry
from loyalty.ledger.selectors import program_default
from loyalty.partners.models import WebhookEndpoint
from members.models import Member
from offers.services.coupons import coupon_issue
from offers.services.rewards import reward_redeem
from tests.api.conftest import just_now, key_client, purchase_body
from tests.core.test_permissions import MATRIX, STAFF_ROLES, staff
from tests.offers.conftest import reward_make
from tests.portal.conftest import logged_in, make_member, shop
from tests.portal.test_rewards import give

pytestmark = pytest.mark.django_db

MISSING = "987654321"  # an id no object has


def url_patterns() -> list[tuple[str, str | None]]:
    """Every (route, name) of the URL configuration, includes expanded, in order."""

    def walk(patterns, prefix: str, namespace: str):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(
                    p.url_patterns, prefix + str(p.pattern), namespace + (f"{p.namespace}:" if p.namespace else "")
                )
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), (namespace + p.name) if p.name else None

    return list(walk(get_resolver().url_patterns, "", ""))


# --- the classification ---------------------------------------------------------------------------

# API: every operation; "own" = the partner's own data (lists show none of another partner's),
# "object" = another partner's object answers 404 (checked in test_another_partners_objects_are_404).
API = {
    "api:v1:members": "own",
    "api:v1:member": "object",
    "api:v1:member-balance": "object",
    "api:v1:member-entries": "object",
    "api:v1:member-offers": "object",
    "api:v1:purchases": "own",  # by card: earns at the partner, never reads the member (coalition rule)
    "api:v1:returns": "object",
    "api:v1:redemptions": "object",
    "api:v1:redemption-cancel": "object",
    "api:v1:events": "own",  # by card: earns, never reads (tests/api/test_access.py)
    "api:v1:rewards": "own",
    "api:v1:reward-redeem": "object",
    "api:v1:coupons-validate": "object",
    "api:v1:coupons-redeem": "object",
    "api:v1:coupon-cancel": "object",
    "api:v1:webhooks": "own",
    "api:v1:webhook": "object",
}
PUBLIC = {"api:schema", "api:docs", "portal:welcome", "portal:manifest", "portal:join", "portal:join_sent"}
PUBLIC |= {"portal:login", "portal:logout", "portal:password_reset", "portal:password_reset_done"}
PUBLIC |= {"portal:password_reset_complete", "portal:account_closed", "admin:login", "admin:jsi18n"}
# public by a token in the URL: an unknown token is refused (404 or the page saying the link is bad)
TOKEN = {"portal:join_confirm", "portal:password_reset_confirm", "messaging:open", "messaging:click"}
TOKEN |= {"messaging:unsubscribe", "messaging:provider_status"}
# portal pages of the logged-in member; "object": another member's object is 404
PORTAL_OBJECT = {  # name -> (path, the methods it answers)
    "portal:movement": ("history/{}/", ("get",)),
    "portal:wallet_coupon": ("wallet/{}/", ("get",)),
    "portal:reward_cancel": ("wallet/rewards/{}/cancel/", ("get", "post")),
}
PORTAL_MEMBER = {name for name in ("home", "card", "history", "my_data", "consents", "export_json", "export_zip")}
PORTAL_MEMBER |= {"close_account", "erase_account", "offers", "offer_activate", "rewards", "reward_redeem", "wallet"}
PORTAL_MEMBER |= {"surveys", "survey", "invite", "challenges", "challenge_join", "events", "event_register"}
PORTAL_MEMBER |= {"event_cancel"}
PORTAL_MEMBER = {f"portal:{n}" for n in PORTAL_MEMBER} | set(PORTAL_OBJECT)
STAFF = {"dashboards:index", "dashboards:health", "dashboards:tiers", "dashboards:segments", "dashboards:offers"}
STAFF |= {"dashboards:profitability"}
# admin screens of a model: admin/<app>/<model>/... (changelist, add, change, delete, history, import, export)
ADMIN_MODEL = re.compile(
    r"^admin/(?P<app>\w+)/(?P<model>\w+)/(?:|add/|import/|export/|process_import/|<path:object_id>/(?:|change/|delete/|history/))$"
)
# the admin's own pages and the screens' extra views: staff only (login for everyone else)
ADMIN_OTHER = {"admin:index", "admin:logout", "admin:password_change", "admin:password_change_done"}
ADMIN_OTHER |= {"admin:autocomplete", "admin:view_on_site", "admin:app_list", "admin_opening_balances"}
ADMIN_OTHER |= {"admin:auth_user_password_change", "admin:ledger_account_adjust", "admin:activity_staffjob_run"}
ADMIN_OTHER |= {
    "admin:segments_scorerun_compute",
    "admin:segments_segment_preview",
    "admin:segments_segment_composition",
    "admin:offers_member_ranking",
}
ADMIN_OTHER |= {"admin:messaging_content_preview", "admin:engagement_survey_results"}
ADMIN_OTHER |= {"admin:engagement_survey_results_csv", "admin:campaigns_campaign_results"}
ADMIN_OTHER |= {"admin:campaigns_campaign_results_csv", "admin:campaigns_campaign_sample_size"}
ADMIN_CATCH_ALL = "admin/(?P<url>.*)$"


def classify(route: str, name: str | None) -> str:
    if name in API:
        return "api"
    if name in PUBLIC:
        return "public"
    if name in TOKEN:
        return "token"
    if name in PORTAL_MEMBER:
        return "portal"
    if name in STAFF:
        return "staff"
    if ADMIN_MODEL.match(route):
        return "admin-model"
    if name in ADMIN_OTHER or route == ADMIN_CATCH_ALL:
        return "admin"
    return "UNCLASSIFIED"


def concrete(route: str) -> str:
    """A URL of the route: every converter given a value no object has."""
    route = re.sub(r"<(?:int|path|str|slug)?:?\w+>", MISSING, route)
    route = route.replace("^(?P<app_label>", "").replace("(?P<url>.*)$", "nothing/here/")
    route = re.sub(r"\|[\w|]+\)/\$$", "/", route)  # admin:app_list: the first app label
    route = route.removeprefix("^").replace(")/$", "/")
    return "/" + route


COUNTS: Counter = Counter()


def test_every_url_pattern_is_classified(figure):
    """Rule: no URL pattern exists without its place in the matrix: a new one fails here until it is
    classified (and so checked by the tests below)."""
    patterns = url_patterns()
    classes = Counter(classify(route, name) for route, name in patterns)
    unclassified = [(route, name) for route, name in patterns if classify(route, name) == "UNCLASSIFIED"]
    assert unclassified == []
    named = {name for _route, name in patterns}
    stale = (set(API) | PUBLIC | TOKEN | PORTAL_MEMBER | STAFF | ADMIN_OTHER) - named
    assert stale == set(), "classified names that no longer exist"
    COUNTS["patterns"] = len(patterns)
    figure(
        12,
        "URL patterns classified",
        f"{len(patterns)} patterns: " + ", ".join(f"{n} {c}" for c, n in sorted(classes.items())),
    )


# --- anonymous visitors and partner keys outside the API -----------------------------------------------


def login_redirect(response, login: str) -> bool:
    return response.status_code == 302 and response["Location"].startswith(login)


def test_anonymous_and_partner_keys_reach_nothing_but_the_login(db, figure):
    """Rule: anonymous → API 401, portal pages → /login/, staff dashboards and the admin → the admin
    login; a partner's API key opens no session, so it gets exactly the same outside the API."""
    partner = key_client("Key Holder")
    key = partner._credentials["HTTP_AUTHORIZATION"]
    anonymous, with_key = Client(), Client(HTTP_AUTHORIZATION=key)
    checked = Counter()
    wrong = []
    for route, name in url_patterns():
        kind = classify(route, name)
        url = concrete(route)
        if kind == "api":
            response = anonymous.get(url)
            if response.status_code != 401:
                wrong.append((url, "anonymous", response.status_code))
            checked["anonymous"] += 1
            continue
        if kind in ("public", "token"):
            continue
        login = "/login/" if kind == "portal" else "/admin/login/"
        if name == "admin:logout":  # logging out is a POST that ends any session; GET is 405
            continue
        for who, client in (("anonymous", anonymous), ("partner key", with_key)):
            response = client.get(url)
            if response.status_code == 405:  # a POST-only action: the POST is what must be refused
                response = client.post(url)
            if not login_redirect(response, login):
                wrong.append((url, who, response.status_code, response.get("Location")))
            checked[who] += 1
    assert wrong == []
    COUNTS["anonymous+key"] = sum(checked.values())
    figure(
        12,
        "anonymous and partner keys outside the API",
        f"{checked['anonymous']} anonymous + {checked['partner key']} partner-key requests: API 401, the rest the login page",
    )


# --- another partner's objects --------------------------------------------------------------------------


def test_another_partners_objects_are_404_with_none_of_their_data(db, settings, figure):
    """Rule: every API operation given another partner's object (its member, redemption, purchase,
    coupon use, webhook endpoint) answers 404, byte for byte as for an object that does not exist,
    and nothing of the object in the body; lists show none of it."""
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = True
    owner, intruder = key_client("Owner Partner"), key_client("Intruder Partner")
    sent = Counter()  # URL name -> requests the intruder sent to it
    for method in ("get", "post", "delete"):
        real = getattr(intruder, method)
        setattr(
            intruder,
            method,
            lambda path, *a, _real=real, **k: (
                sent.update([resolve(path.split("?")[0]).view_name]) or _real(path, *a, **k)
            ),
        )
    number = owner.post(
        "/api/v1/members/", {"email": "secret-ann@example.com", "first_name": "Annabel"}, format="json"
    ).json()["member_number"]
    assert (
        owner.post(
            "/api/v1/purchases/", purchase_body(number, external_id="own-till-1", occurred_at=just_now()), format="json"
        ).status_code
        == 201
    )
    redemption = owner.post(
        "/api/v1/redemptions/", {"member_number": number, "points": 10, "external_id": "own-burn"}, format="json"
    ).json()
    hook = owner.post(
        "/api/v1/webhooks/", {"url": "http://127.0.0.1:18139/own", "event_types": ["points.earned"]}, format="json"
    ).json()
    member = Member.objects.get(member_number=number)
    coupon = coupon_issue(program=program_default(), source="batch", member=member)
    free_coupon = coupon_issue(program=program_default(), source="batch", max_uses=1)
    use = owner.post("/api/v1/coupons/redeem/", {"code": free_coupon.code}, format="json").json()
    reward = reward_make(points_cost=1)
    secrets = [number, "secret-ann", "Annabel", "own-till-1", "own-burn", coupon.code, "127.0.0.1:18139"]

    def same_404(hidden, unknown, *, hidden_value, unknown_value):
        assert hidden.status_code == 404 == unknown.status_code, (hidden.status_code, hidden.content)
        assert hidden.content.replace(hidden_value.encode(), b"X") == unknown.content.replace(
            unknown_value.encode(), b"X"
        )
        body = hidden.content.decode().replace(hidden_value, "")
        leaked = [s for s in secrets if s and s != hidden_value and s in body]
        assert leaked == [], leaked

    unknown_number = "000000000000"
    for path in (
        "/api/v1/members/{}/",
        "/api/v1/members/{}/balance/",
        "/api/v1/members/{}/entries/",
        "/api/v1/members/{}/offers/",
    ):
        same_404(
            intruder.get(path.format(number)),
            intruder.get(path.format(unknown_number)),
            hidden_value=number,
            unknown_value=unknown_number,
        )
    redeem = "/api/v1/members/{}/rewards/" + str(reward.pk) + "/redeem/"
    same_404(
        intruder.post(redeem.format(number), {}, format="json"),
        intruder.post(redeem.format(unknown_number), {}, format="json"),
        hidden_value=number,
        unknown_value=unknown_number,
    )
    burn = {"points": 1, "external_id": "x-burn"}
    same_404(
        intruder.post("/api/v1/redemptions/", {**burn, "member_number": number}, format="json"),
        intruder.post(
            "/api/v1/redemptions/", {**burn, "member_number": unknown_number, "external_id": "y-burn"}, format="json"
        ),
        hidden_value=number,
        unknown_value=unknown_number,
    )
    rid = str(redemption.get("redemption_id") or redemption.get("id"))
    same_404(
        intruder.post(f"/api/v1/redemptions/{rid}/cancel/", {}, format="json"),
        intruder.post(f"/api/v1/redemptions/{MISSING}/cancel/", {}, format="json"),
        hidden_value=rid,
        unknown_value=MISSING,
    )
    back = {"external_id": "x-ret", "amount": "10.00"}
    same_404(
        intruder.post("/api/v1/returns/", {**back, "purchase_external_id": "own-till-1"}, format="json"),
        intruder.post(
            "/api/v1/returns/", {**back, "external_id": "y-ret", "purchase_external_id": "no-such-till"}, format="json"
        ),
        hidden_value="own-till-1",
        unknown_value="no-such-till",
    )
    for path in ("/api/v1/coupons/validate/", "/api/v1/coupons/redeem/"):
        same_404(
            intruder.post(path, {"code": coupon.code, "member_number": number}, format="json"),
            intruder.post(path, {"code": "NOSUCHCODE", "member_number": number}, format="json"),
            hidden_value=coupon.code,
            unknown_value="NOSUCHCODE",
        )
    hidden = intruder.post(f"/api/v1/coupons/{free_coupon.code}/cancel/", {"use_id": use["use_id"]}, format="json")
    assert hidden.status_code == 404 and hidden.json()["code"] == "coupon_use_not_found"
    hook_id = str(hook["id"])
    same_404(
        intruder.delete(f"/api/v1/webhooks/{hook_id}/"),
        intruder.delete(f"/api/v1/webhooks/{MISSING}/"),
        hidden_value=hook_id,
        unknown_value=MISSING,
    )
    assert WebhookEndpoint.objects.get(pk=hook["id"]).deleted_at is None
    assert intruder.get("/api/v1/webhooks/").json() == []
    assert intruder.get("/api/v1/members/?email=secret-ann@example.com").json() == []
    assert intruder.post("/api/v1/members/", {"email": "secret-ann@example.com"}, format="json").status_code == 409
    objects = {name for name, kind in API.items() if kind == "object"}
    assert objects <= set(sent), objects - set(sent)  # every object operation was tried
    requests = sum(sent.values())
    COUNTS["partner"] = requests
    figure(
        12,
        "another partner's objects",
        f"{requests} requests over {len(objects)} object operations: 404 identical to an unknown object, 0 bytes of the object",
    )


# --- another member's objects on the portal --------------------------------------------------------------


def test_another_members_portal_objects_are_404(db, figure):
    """Rule: every portal URL naming a member's object (a movement, a coupon, a reward redemption)
    answers 404 to another member, and every member page with an unknown id is 404 too."""
    program = demo_program_configure()
    owner, intruder = make_member(), make_member()
    shop(owner)
    give(owner, program, 500)
    done = reward_redeem(member=owner, reward=reward_make(points_cost=10), channel="portal", idempotency_key="verify-1")
    objects = {
        "portal:movement": Entry.objects.filter(account__member=owner).first().transaction_id,
        "portal:wallet_coupon": done.coupon_id,
        "portal:reward_cancel": done.pk,
    }
    own, other = logged_in(owner), logged_in(intruder)
    wrong, requests = [], 0
    for name, (path, methods) in PORTAL_OBJECT.items():
        url = "/" + path.format(objects[name])
        assert own.get(url).status_code == 200, url
        for method in methods:
            response = getattr(other, method)(url)
            requests += 1
            if response.status_code != 404:
                wrong.append((url, method, response.status_code))
    for route, name in url_patterns():
        if classify(route, name) == "portal" and "<" in route:
            response = other.get(concrete(route))
            if response.status_code == 405:  # an action: POST only
                response = other.post(concrete(route))
            requests += 1
            if response.status_code != 404:
                wrong.append((concrete(route), response.status_code))
    assert wrong == []
    COUNTS["member"] = requests
    figure(
        12,
        "another member's portal objects",
        f"{requests} requests: {len(PORTAL_OBJECT)} object URLs × GET/POST by another member and every id URL with an unknown id: 404",
    )


# --- staff roles on every admin screen -----------------------------------------------------------------


def admin_screens():
    for model in apps.get_models():
        if admin.site.is_registered(model):
            yield model


def test_every_admin_screen_answers_each_role_as_the_written_matrix_says(db, figure):
    """Rule: each staff role (and a staff login with no role) may view, add, change and delete on
    every admin screen exactly what the written matrix grants, over HTTP: the changelist (view),
    the add page (add), a POST to the change page (change) and the delete page (delete) answer
    200/302 when granted and 403 when not."""
    wrong, requests = [], 0
    for role in STAFF_ROLES:
        client, user = Client(), staff(role)
        client.force_login(user)
        for model in admin_screens():
            label = model._meta.label
            granted = set(MATRIX.get(label, {}).get(role, "").split())
            base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
            probes = {"view": client.get(base), "add": client.get(base + "add/")}
            if model._meta.managed:
                probes["change"] = client.post(base + f"{MISSING}/change/", {})
                probes["delete"] = client.get(base + f"{MISSING}/delete/")
            else:  # a table-less screen (jobs, dashboards): no object to look up; the admin's own check
                request = RequestFactory().get(base)
                request.user = user
                model_admin = admin.site.get_model_admin(model)
                probes["change"] = 200 if model_admin.has_change_permission(request) else 403
                probes["delete"] = 200 if model_admin.has_delete_permission(request) else 403
            requests += 4
            for action, response in probes.items():
                status = response if isinstance(response, int) else response.status_code
                allowed = status != 403
                if allowed != (action in granted):
                    wrong.append((role, label, action, status))
    assert wrong == []
    COUNTS["staff"] = requests
    total = sum(v for k, v in COUNTS.items() if k != "patterns")
    figure(
        12,
        "admin screens × roles × actions",
        f"{len(list(admin_screens()))} screens × {len(STAFF_ROLES)} roles × 4 actions = {requests} requests as written; whole matrix {total} requests",
    )
