"""Portal pages of engagement: surveys (list, form) and inviting friends (code, link, invites)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from loyalty.activity.services import survey_submit
from loyalty.core.errors import ApplicationError, NotFound
from loyalty.portal import engagement
from loyalty.portal.forms import apply_error
from loyalty.portal.views import member_required


@require_GET
@member_required
def surveys(request: HttpRequest) -> HttpResponse:
    page = engagement.surveys_page(member=request.member)
    return render(request, "portal/surveys.html", {"page": page, "nav": "surveys"})


@require_http_methods(["GET", "POST"])
@member_required
def survey(request: HttpRequest, survey_id: int) -> HttpResponse:
    """The form; a POST stores the answers and gives the reward in one transaction (the workflow). An
    answer refused (a field, answered already) is shown on the form and changes nothing."""
    try:
        page = engagement.survey_page(member=request.member, survey_id=survey_id)
    except NotFound:
        raise Http404("No such survey") from None
    form = engagement.SurveyForm(request.POST if request.method == "POST" else None, questions=page.questions)
    status = 200
    if request.method == "POST" and page.response is None and form.is_valid():
        try:
            response = survey_submit(member=request.member, survey=page.survey, data=request.POST)
        except ApplicationError as error:
            apply_error(form, error)
            status = error.http_status
        else:
            thanks = f"Thank you! {response.points:,} points are yours." if response.points else "Thank you!"
            messages.success(request, thanks)
            return redirect("portal:surveys")
    elif request.method == "POST":
        status = 409 if page.response is not None else 422
    return render(request, "portal/survey.html", {"page": page, "form": form, "nav": "surveys"}, status=status)


@require_GET
@member_required
def invite(request: HttpRequest) -> HttpResponse:
    page = engagement.invite_page(member=request.member, join_url=request.build_absolute_uri(reverse("portal:join")))
    return render(request, "portal/invite.html", {"page": page, "nav": "invite"})
