"""The surveys' and referrals' part of a member's data export and erasure. Erasure blanks the member's
free-text survey answers (their own words) and forgets their payment-card hashes; scores, choices and
referrals stay as records without personal data (the member row is pseudonymized by members)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from loyalty.engagement.models import CardFingerprint, Referral, SurveyAnswer, SurveyResponse


def _time(value) -> str | None:
    return value.isoformat() if value is not None else None


def export_member(member) -> dict[str, Any]:
    responses = SurveyResponse.objects.filter(member=member).select_related("survey").order_by("submitted_at", "id")
    answers: dict[int, list[dict]] = {}
    for answer in (
        SurveyAnswer.objects.filter(response__member=member).select_related("question").order_by("question__position")
    ):
        value = answer.score if answer.score is not None else (answer.choices or answer.text)
        answers.setdefault(answer.response_id, []).append({"question": answer.question.text, "answer": value})
    referrals = list(Referral.objects.filter(Q(referee=member) | Q(referrer=member)).order_by("joined_at", "id"))
    referred = next((r for r in referrals if r.referee_id == member.pk), None)
    return {
        "surveys": [
            {
                "survey": r.survey.title,
                "submitted_at": _time(r.submitted_at),
                "points": r.points,
                "answers": answers.get(r.pk, []),
            }
            for r in responses
        ],
        "referrals": {
            "joined_with_a_code": {"status": referred.status, "joined_at": _time(referred.joined_at)}
            if referred
            else None,
            "friends_invited": [
                {"status": r.status, "joined_at": _time(r.joined_at), "points": r.referrer_points}
                for r in referrals
                if r.referrer_id == member.pk
            ],
            "payment_cards_seen": CardFingerprint.objects.filter(member=member).count(),
        },
    }


def erase_member(member) -> None:
    SurveyAnswer.objects.filter(response__member=member).exclude(text="").update(text="")
    CardFingerprint.objects.filter(member=member).delete()
