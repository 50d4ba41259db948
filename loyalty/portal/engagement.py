"""Portal page data and forms of engagement: surveys open to the member and the survey form, the
member's referral link and invites. Every read starts from the logged-in member."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms

from loyalty.engagement.models import QuestionKind, Survey, SurveyQuestion, SurveyResponse
from loyalty.engagement.selectors.referrals import Invite, referral_invites, referral_settings_of
from loyalty.engagement.selectors.surveys import (
    survey_for_member,
    survey_questions,
    survey_response_of,
    surveys_answered_by,
    surveys_open_for,
)
from loyalty.ledger.selectors import program_default
from members.models import Member


@dataclass(frozen=True)
class SurveysPage:
    open: list[Survey]
    answered: list[SurveyResponse]


def surveys_page(*, member: Member) -> SurveysPage:
    return SurveysPage(open=surveys_open_for(member=member), answered=surveys_answered_by(member=member))


@dataclass(frozen=True)
class SurveyPage:
    survey: Survey
    questions: list[SurveyQuestion]
    response: SurveyResponse | None


def survey_page(*, member: Member, survey_id: int) -> SurveyPage:
    """The survey if it is open and for this member (else ``survey_not_found``), with whether they
    answered it."""
    survey = survey_for_member(member=member, survey_id=survey_id)
    return SurveyPage(
        survey=survey,
        questions=survey_questions(survey=survey),
        response=survey_response_of(member=member, survey=survey),
    )


class SurveyForm(forms.Form):
    """One field per question, named ``q<id>`` as the survey service reads them; the service checks the
    answers again and its errors land on the same fields."""

    def __init__(self, *args, questions: list[SurveyQuestion], **kwargs):
        super().__init__(*args, **kwargs)
        for question in questions:
            self.fields[f"q{question.pk}"] = _field(question)


def _field(question: SurveyQuestion) -> forms.Field:
    common = {"label": question.text, "required": question.required}
    if question.kind == QuestionKind.RATING:
        return forms.TypedChoiceField(
            choices=[(i, str(i)) for i in range(1, 6)],
            coerce=int,
            widget=forms.RadioSelect(attrs={"class": "scale"}),
            help_text="1 = very poor, 5 = excellent",
            **common,
        )
    if question.kind == QuestionKind.NPS:
        return forms.TypedChoiceField(
            choices=[(i, str(i)) for i in range(0, 11)],
            coerce=int,
            widget=forms.RadioSelect(attrs={"class": "scale"}),
            help_text="0 = not at all likely, 10 = extremely likely",
            **common,
        )
    if question.kind == QuestionKind.SINGLE:
        return forms.ChoiceField(choices=[(c, c) for c in question.choices], widget=forms.RadioSelect, **common)
    if question.kind == QuestionKind.MULTIPLE:
        return forms.MultipleChoiceField(
            choices=[(c, c) for c in question.choices], widget=forms.CheckboxSelectMultiple, **common
        )
    return forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=2000, **common)


@dataclass(frozen=True)
class InvitePage:
    code: str
    link: str
    referrer_points: int
    referee_points: int
    min_spend: str
    within_days: int
    active: bool
    invites: list[Invite]


def invite_page(*, member: Member, join_url: str) -> InvitePage:
    """The member's code and link (``join_url`` absolute, with ``?ref=``), what a referral gives in
    the default program, and each friend's status."""
    settings = referral_settings_of(program=program_default())
    return InvitePage(
        code=member.referral_code,
        link=f"{join_url}?ref={member.referral_code}",
        referrer_points=settings.referrer_points if settings else 0,
        referee_points=settings.referee_points if settings else 0,
        min_spend=str(settings.min_spend) if settings else "0",
        within_days=settings.within_days if settings else 0,
        active=bool(settings and settings.is_active),
        invites=referral_invites(member=member),
    )
