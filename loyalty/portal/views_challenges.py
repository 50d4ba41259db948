"""Member portal pages of engagement: challenges with their progress and badges, community events
(register, cancel). Thin views over ``engagement`` selectors and services; every read and write
starts from ``request.member``, so a member only ever sees and changes their own."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from loyalty.core import clock
from loyalty.core.errors import ApplicationError, NotFound
from loyalty.engagement.selectors.challenges import member_badges, member_challenges
from loyalty.engagement.selectors.events import member_community_events
from loyalty.engagement.services.challenges import challenge_opt_in
from loyalty.engagement.services.events import event_register, event_registration_cancel
from loyalty.ledger.selectors import program_default
from loyalty.portal.views import member_required


@require_GET
@member_required
def challenges(request: HttpRequest) -> HttpResponse:
    member = request.member
    earned, available = member_badges(member=member)
    context = {
        "challenges": member_challenges(member=member, program=program_default(), now=clock.now()),
        "earned": earned,
        "available": available,
        "nav": "challenges",
    }
    return render(request, "portal/challenges.html", context)


@require_POST
@member_required
def challenge_join(request: HttpRequest, challenge_id: int) -> HttpResponse:
    """Join a challenge that asks for it; again is harmless. Unknown, ended or not for this member: 404."""
    try:
        _progress, created = challenge_opt_in(member=request.member, challenge_id=challenge_id)
    except NotFound:
        raise Http404("No such challenge") from None
    except ApplicationError as error:
        messages.error(request, f"{error.message}.")
    else:
        messages.success(
            request, "You joined the challenge: what you do from now on counts." if created else "You are in."
        )
    return redirect("portal:challenges")


@require_GET
@member_required
def events(request: HttpRequest) -> HttpResponse:
    cards = member_community_events(member=request.member, program=program_default(), now=clock.now())
    return render(request, "portal/events.html", {"events": cards, "nav": "events"})


@require_POST
@member_required
def event_join(request: HttpRequest, event_id: int) -> HttpResponse:
    """Take a place (again is harmless). Full or started: a message, nothing changed. Unknown: 404."""
    try:
        _registration, _created = event_register(member=request.member, event_id=event_id)
    except NotFound:
        raise Http404("No such event") from None
    except ApplicationError as error:
        messages.error(request, f"{error.message}.")
    else:
        messages.success(request, "Your place is booked.")
    return redirect("portal:events")


@require_POST
@member_required
def event_cancel(request: HttpRequest, event_id: int) -> HttpResponse:
    """Give the place back. Not registered (or another member's event): 404."""
    try:
        event_registration_cancel(member=request.member, event_id=event_id)
    except NotFound:
        raise Http404("No registration to cancel") from None
    except ApplicationError as error:
        messages.error(request, f"{error.message}.")
    else:
        messages.success(request, "Your place is cancelled.")
    return redirect("portal:events")
