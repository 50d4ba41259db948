"""Member portal pages. Each view is thin: it reads one portal selector or calls one portal (or
domain) service, and renders one template. Every page but the public ones needs a login linked
to a member; a member only ever reaches their own data."""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.mail import send_mail
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from loyalty.core import clock
from loyalty.core.errors import ApplicationError, NotFound
from loyalty.portal import cards, exports, forms, selectors, services
from members.models import ConsentChannel, ConsentPurpose, Member
from members.selectors import consent_history, consent_state
from members.services import member_export, redemption_code_issue
from offers.models import RedemptionState
from offers.services import offers as offer_services
from offers.services import rewards as offer_rewards
from offers.services.impressions import offer_impressions_record


def member_required(view):
    """Logged-out visitors go to the login page; a login without a member (staff) gets a page
    that says so (403), never an error."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        member = Member.objects.filter(user=request.user).first()
        if member is None:
            return render(request, "portal/no_member.html", status=403)
        request.member = member
        return view(request, *args, **kwargs)

    return wrapped


# --- public pages -----------------------------------------------------------------------------


@require_GET
def welcome(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and Member.objects.filter(user=request.user).exists():
        return redirect("portal:home")
    return render(request, "portal/welcome.html")


def _send_confirmation(request: HttpRequest, user) -> None:
    token = services.email_confirmation_token(user=user)
    link = request.build_absolute_uri(reverse("portal:join_confirm", kwargs={"token": token}))
    body = render_to_string("portal/email/confirm_email.txt", {"link": link, "user": user})
    send_mail("Confirm your email to start collecting points", body, settings.DEFAULT_FROM_EMAIL, [user.email])


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest) -> HttpResponse:
    ref = request.GET.get("ref", "")[:40]  # a friend's link: /join/?ref=CODE
    form = forms.JoinForm(request.POST if request.method == "POST" else None, initial={"referral_code": ref})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            member = services.portal_join(
                email=data["email"],
                password=data["password"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                consents=[(p, c, granted) for (p, c), granted in form.consent_values().items()],
                referral_code=data["referral_code"],
                referral_channel="link" if ref else "form",
            )
        except ApplicationError as error:
            forms.apply_error(form, error)
        else:
            _send_confirmation(request, member.user)
            return redirect("portal:join_sent")
    return render(request, "portal/join.html", {"form": form})


@require_GET
def join_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/join_sent.html")


@require_GET
def join_confirm(request: HttpRequest, token: str) -> HttpResponse:
    confirmed = services.portal_email_confirm(token=token)
    return render(request, "portal/join_confirmed.html", {"confirmed": confirmed}, status=200 if confirmed else 400)


class LoginView(auth_views.LoginView):
    template_name = "portal/login.html"
    authentication_form = forms.LoginForm
    redirect_authenticated_user = True


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "portal/password_reset.html"
    email_template_name = "portal/email/password_reset.txt"
    subject_template_name = "portal/email/password_reset_subject.txt"
    success_url = reverse_lazy("portal:password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "portal/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "portal/password_reset_confirm.html"
    success_url = reverse_lazy("portal:password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.portal_password_reset_done(user=form.user)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "portal/password_reset_complete.html"


@require_GET
def manifest(request: HttpRequest) -> HttpResponse:
    """Web app manifest: the portal can be added to a phone's home screen (no service worker)."""
    body = {
        "name": "Loyalty — my points",
        "short_name": "My points",
        "description": "Your points, tier, card and rewards.",
        "start_url": reverse("portal:home"),
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#0b5d52",
        "icons": [
            {"src": static("portal/icons/icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": static("portal/icons/icon-512.png"), "sizes": "512x512", "type": "image/png"},
            {
                "src": static("portal/icons/icon-maskable-512.png"),
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
        ],
    }
    return JsonResponse(body, content_type="application/manifest+json")


@require_GET
def account_closed(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/account_closed.html", {"erased": request.GET.get("erased") == "1"})


# --- member pages -----------------------------------------------------------------------------


def _shown(request: HttpRequest, response: HttpResponse, items) -> HttpResponse:
    """After a page rendered the ranking's items: count them as shown to the member (novelty)."""
    if items:
        offer_impressions_record(member=request.member, items=items, channel=selectors.PORTAL_CHANNEL)
    return response


@require_GET
@member_required
def home(request: HttpRequest) -> HttpResponse:
    home = selectors.home(member=request.member)
    return _shown(request, render(request, "portal/home.html", {"home": home, "nav": "home"}), home.for_you)


@require_http_methods(["GET", "POST"])
@member_required
def card(request: HttpRequest) -> HttpResponse:
    member = request.member
    code, error = None, None
    if request.method == "POST":
        try:
            code = redemption_code_issue(member=member)
        except ApplicationError as exc:
            error = exc.message
    context = {
        "member": member,
        "barcode": cards.barcode_svg_uri(member.member_number),
        "qr": cards.qr_svg_uri(member.member_number),
        "code": code,
        "code_valid_minutes": settings.REDEMPTION_CODE_TTL_SECONDS // 60,
        "code_valid_seconds": settings.REDEMPTION_CODE_TTL_SECONDS,
        "error": error,
        "nav": "card",
    }
    response = render(request, "portal/card.html", context, status=409 if error else 200)
    if code:
        response["Cache-Control"] = "no-store"
    return response


@require_GET
@member_required
def history(request: HttpRequest) -> HttpResponse:
    form = forms.HistoryFilterForm(request.GET or None, kinds=selectors.HISTORY_FILTERS)
    filters = selectors.HistoryFilter()
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = selectors.HistoryFilter(kind=data["kind"], since=data["since"], until=data["until"])
    page, lines = selectors.history(member=request.member, filters=filters, page=request.GET.get("page", 1))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "portal/history.html",
        {"form": form, "page": page, "lines": lines, "query": query.urlencode(), "nav": "history"},
    )


@require_GET
@member_required
def movement(request: HttpRequest, transaction_id: int) -> HttpResponse:
    try:
        found = selectors.movement(member=request.member, transaction_id=transaction_id)
    except NotFound:
        raise Http404("No such movement") from None
    return render(request, "portal/movement.html", {"movement": found, "nav": "history"})


@require_http_methods(["GET", "POST"])
@member_required
def my_data(request: HttpRequest) -> HttpResponse:
    member = request.member
    form = forms.ProfileForm(request.POST if request.method == "POST" else None, member=member)
    if request.method == "POST" and form.is_valid():
        try:
            services.portal_profile_update(member=member, user=request.user, **form.changes())
        except ApplicationError as error:
            forms.apply_error(form, error)
        else:
            messages.success(request, "Your details are saved.")
            return redirect("portal:my_data")
    return render(request, "portal/my_data.html", {"form": form, "member": member, "nav": "my_data"})


def _consent_words(purpose: str, channel: str) -> str:
    for p, c, label in forms.CONSENT_OPTIONS:
        if (p, c) == (purpose, channel):
            return label
    channel_words = ConsentChannel(channel).label if channel in ConsentChannel.values else channel
    purpose_words = ConsentPurpose(purpose).label if purpose in ConsentPurpose.values else purpose
    return f"{purpose_words} ({channel_words})"


@require_http_methods(["GET", "POST"])
@member_required
def consents(request: HttpRequest) -> HttpResponse:
    member = request.member
    form = forms.ConsentForm(request.POST if request.method == "POST" else None, current=consent_state(member=member))
    if request.method == "POST" and form.is_valid():
        try:
            changed = services.portal_consents_save(member=member, wanted=form.consent_values())
        except ApplicationError as error:
            forms.apply_error(form, error)
        else:
            messages.success(request, "Your choices are saved." if changed else "Nothing changed.")
            return redirect("portal:consents")
    events = [
        {"at": e.occurred_at, "granted": e.granted, "what": _consent_words(e.purpose, e.channel), "source": e.source}
        for e in consent_history(member=member)[:50]
    ]
    return render(request, "portal/consents.html", {"form": form, "events": events, "nav": "my_data"})


def _download(content: bytes, content_type: str, name: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@member_required
def export_json(request: HttpRequest) -> HttpResponse:
    member = request.member
    name = f"my-data-{member.member_number}-{clock.today():%Y%m%d}.json"
    return _download(exports.export_json(member_export(member=member)), "application/json", name)


@require_GET
@member_required
def export_zip(request: HttpRequest) -> HttpResponse:
    member = request.member
    name = f"my-data-{member.member_number}-{clock.today():%Y%m%d}.zip"
    return _download(exports.export_csv_zip(member_export(member=member)), "application/zip", name)


def _confirmed_action(request: HttpRequest, *, action, template: str, done_query: str) -> HttpResponse:
    form = forms.ConfirmWithPasswordForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            action(member=request.member, user=request.user, password=form.cleaned_data["password"])
        except ApplicationError as error:
            forms.apply_error(form, error)
        else:
            logout(request)
            return redirect(reverse("portal:account_closed") + done_query)
    return render(request, template, {"form": form, "nav": "my_data"})


@require_http_methods(["GET", "POST"])
@member_required
def close_account(request: HttpRequest) -> HttpResponse:
    return _confirmed_action(
        request, action=services.portal_account_close, template="portal/close_account.html", done_query=""
    )


@require_http_methods(["GET", "POST"])
@member_required
def erase_account(request: HttpRequest) -> HttpResponse:
    return _confirmed_action(
        request, action=services.portal_account_erase, template="portal/erase_account.html", done_query="?erased=1"
    )


# --- rewards and the coupon wallet ------------------------------------------------------------

PORTAL_CHANNEL = selectors.PORTAL_CHANNEL


@require_GET
@member_required
def rewards(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/rewards.html", {"page": selectors.rewards(member=request.member), "nav": "rewards"})


@require_http_methods(["GET", "POST"])
@member_required
def reward_redeem(request: HttpRequest, reward_id: int) -> HttpResponse:
    """The confirmation step, then the redemption (channel portal) keyed by the form's token: a
    double submit redeems once. A refusal (out of stock, not enough points, not eligible) is a form
    error on this page and changes nothing."""
    member = request.member
    try:
        card = selectors.reward_to_redeem(member=member, reward_id=reward_id)
    except NotFound:
        raise Http404("No such reward") from None
    form = forms.OnceForm(request.POST if request.method == "POST" else None)
    refusal, status = "", 200
    if request.method == "POST" and form.is_valid():
        try:
            done = offer_rewards.reward_redeem(
                member=member,
                reward=card.reward,
                channel=PORTAL_CHANNEL,
                idempotency_key=form.idempotency_key(member=member, action="reward"),
            )
        except ApplicationError as error:
            forms.apply_error(form, error)
            status = error.http_status
        else:
            messages.success(
                request, f"{card.reward.name}: done. Your coupon {done.coupon.code} is in your wallet below."
            )
            return redirect("portal:wallet")
    elif request.method == "POST":
        form, refusal, status = forms.OnceForm(), "Please confirm again.", 400  # a tampered token: a fresh one
    account = selectors.member_program_account(member=member)[1]
    available = account.available if account else 0
    context = {
        "card": card,
        "form": form,
        "available": available,
        "left": available - card.reward.points_cost,
        "refusal": refusal,
        "nav": "rewards",
    }
    return render(request, "portal/reward_redeem.html", context, status=status)


@require_GET
@member_required
def wallet(request: HttpRequest) -> HttpResponse:
    response = render(
        request, "portal/wallet.html", {"wallet": selectors.wallet(member=request.member), "nav": "rewards"}
    )
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@member_required
def wallet_coupon(request: HttpRequest, coupon_id: int) -> HttpResponse:
    try:
        item = selectors.wallet_coupon(member=request.member, coupon_id=coupon_id)
    except NotFound:
        raise Http404("No such coupon") from None
    response = render(request, "portal/coupon.html", {"item": item, "nav": "rewards"})
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
@member_required
def reward_cancel(request: HttpRequest, reward_redemption_id: int) -> HttpResponse:
    """The confirmation step, then the cancel: points back, coupon cancelled. Refused (a message,
    nothing changed) when the coupon was used."""
    try:
        found = selectors.reward_redemption_of(member=request.member, reward_redemption_id=reward_redemption_id)
    except NotFound:
        raise Http404("No such reward redemption") from None
    if request.method == "POST":
        if found.status == RedemptionState.CANCELLED:
            messages.info(request, f"{found.reward.name} was already cancelled.")
            return redirect("portal:wallet")
        try:
            offer_rewards.reward_redemption_cancel(reward_redemption=found)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"{found.reward.name} cancelled: {found.points:,} points are back.")
        return redirect("portal:wallet")
    return render(request, "portal/reward_cancel.html", {"found": found, "nav": "rewards"})


# --- offers -----------------------------------------------------------------------------------

BACK_TO = {"home": "portal:home", "offers": "portal:offers"}


@require_GET
@member_required
def offers(request: HttpRequest) -> HttpResponse:
    items = selectors.offers_for_you(member=request.member)
    return _shown(request, render(request, "portal/offers.html", {"items": items, "nav": "offers"}), items)


@require_POST
@member_required
def offer_activate(request: HttpRequest, offer_id: int) -> HttpResponse:
    """One tap: the member activates (clips) an offer that needs it; again is harmless. A refusal
    (ended, not for this member) is a message, nothing changed."""
    try:
        offer = selectors.offer_to_activate(member=request.member, offer_id=offer_id)
    except NotFound:
        raise Http404("No such offer") from None
    try:
        offer_services.offer_activate(member=request.member, offer=offer, channel=PORTAL_CHANNEL)
    except ApplicationError as error:
        messages.error(request, f"{offer.name}: {error.message}.")
    else:
        messages.success(request, f"{offer.name} is active: it applies to your next purchases.")
    return redirect(BACK_TO.get(request.POST.get("back", ""), "portal:offers"))
