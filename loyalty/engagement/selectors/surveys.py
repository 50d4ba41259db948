"""Reads of surveys: which surveys a member may answer, and the results for staff."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q, QuerySet

from loyalty.core import clock
from loyalty.core.errors import NotFound
from loyalty.engagement.models import QuestionKind, Survey, SurveyAnswer, SurveyQuestion, SurveyResponse
from loyalty.ledger.models import Account, AccountKind
from loyalty.tiers.models import MemberTier
from members.models import Member, MemberStatus
from segments.models import SegmentMembership

Z_95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval


def _live(now: dt.datetime) -> Q:
    return (
        Q(is_active=True)
        & (Q(valid_from__isnull=True) | Q(valid_from__lte=now))
        & (Q(valid_until__isnull=True) | Q(valid_until__gt=now))
    )


def surveys_open_for(*, member: Member, now: dt.datetime | None = None) -> list[Survey]:
    """Surveys the member may answer now: live, in a program the member has an account in, targeted at
    them (segments, tiers), not answered yet. Oldest first."""
    now = now or clock.now()
    if member.status != MemberStatus.ACTIVE:
        return []
    return list(_open_for(member, now).order_by("valid_until", "created_at", "id"))


def _open_for(member: Member, now: dt.datetime, *, answered: bool = False) -> QuerySet[Survey]:
    """Live surveys targeted at the member; ``answered``: also those the member answered already."""
    programs = Account.objects.filter(member=member, kind=AccountKind.MEMBER).values("program_id")
    tier_ids = MemberTier.objects.filter(member=member, tier__isnull=False).values("tier_id")
    segment_ids = SegmentMembership.objects.filter(member=member, left_at__isnull=True).values("segment_id")
    targeted = (
        Survey.objects.filter(_live(now), program_id__in=programs)
        .filter(Q(segments__isnull=True) | Q(segments__in=segment_ids))
        .filter(Q(tiers__isnull=True) | Q(tiers__in=tier_ids))
        .values("pk")
    )
    surveys = Survey.objects.filter(pk__in=targeted)
    if answered:
        return surveys
    return surveys.exclude(Exists(SurveyResponse.objects.filter(survey=OuterRef("pk"), member=member)))


def survey_open_check(*, member: Member, survey: Survey, now: dt.datetime | None = None) -> None:
    """``survey_not_found`` (404) unless the survey is live and for this member (answered or not): the
    same 404 for a survey that does not exist, is closed or is not for them."""
    now = now or clock.now()
    if member.status != MemberStatus.ACTIVE or not _open_for(member, now, answered=True).filter(pk=survey.pk).exists():
        raise NotFound("No such survey open for you", code="survey_not_found")


def survey_for_member(*, member: Member, survey_id: int) -> Survey:
    """The survey with its questions, for the member's form (404 as ``survey_open_check``)."""
    survey = Survey.objects.filter(pk=survey_id).first()
    if survey is None:
        raise NotFound("No such survey open for you", code="survey_not_found")
    survey_open_check(member=member, survey=survey)
    return survey


def survey_questions(*, survey: Survey) -> list[SurveyQuestion]:
    return list(survey.questions.order_by("position", "id"))


def survey_response_of(*, member: Member, survey: Survey) -> SurveyResponse | None:
    return SurveyResponse.objects.filter(survey=survey, member=member).first()


def surveys_answered_by(*, member: Member, limit: int = 20) -> list[SurveyResponse]:
    return list(SurveyResponse.objects.filter(member=member).select_related("survey").order_by("-submitted_at")[:limit])


# --- results for staff --------------------------------------------------------------------------


@dataclass(frozen=True)
class Nps:
    """Net Promoter Score on 0–10 answers: % promoters (9–10) − % detractors (0–6), with the 95%
    interval from the multinomial variance (see docs/domain.md, "Surveys")."""

    answers: int
    promoters: int
    passives: int
    detractors: int
    score: float | None
    low: float | None
    high: float | None
    margin: float | None


def nps_of(scores: list[int]) -> Nps:
    """Pure: the NPS of 0–10 scores and its normal-approximation 95% interval. With n answers and
    shares p (promoters) and d (detractors): NPS = 100 (p − d), Var(p − d) = (p + d − (p − d)²) / n."""
    n = len(scores)
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    passives = n - promoters - detractors
    if n == 0:
        return Nps(0, 0, 0, 0, None, None, None, None)
    p, d = promoters / n, detractors / n
    score = 100 * (p - d)
    margin = 100 * Z_95 * math.sqrt(max(p + d - (p - d) ** 2, 0.0) / n)
    return Nps(
        n,
        promoters,
        passives,
        detractors,
        round(score, 1),
        round(max(score - margin, -100.0), 1),
        round(min(score + margin, 100.0), 1),
        round(margin, 1),
    )


@dataclass
class QuestionResult:
    question: SurveyQuestion
    answers: int
    # (label, count, percent of this question's answers) in the order of the scale or the options
    distribution: list[tuple[str, int, float]] = field(default_factory=list)
    mean: float | None = None
    nps: Nps | None = None
    texts: list[dict] = field(default_factory=list)


@dataclass
class SurveyResults:
    survey: Survey
    targeted: int
    responses: int
    response_rate: float | None  # percent
    points: int
    questions: list[QuestionResult]


def survey_targeted_count(*, survey: Survey) -> int:
    """Members the survey is for: active members with an account in its program, in one of its segments
    (if any) and one of its tiers (if any), now."""
    members = Member.objects.filter(
        status=MemberStatus.ACTIVE,
        accounts__program_id=survey.program_id,
        accounts__kind=AccountKind.MEMBER,
    )
    segment_ids = list(survey.segments.values_list("pk", flat=True))
    if segment_ids:
        members = members.filter(
            Exists(
                SegmentMembership.objects.filter(
                    segment_id__in=segment_ids, member_id=OuterRef("pk"), left_at__isnull=True
                )
            )
        )
    tier_ids = list(survey.tiers.values_list("pk", flat=True))
    if tier_ids:
        members = members.filter(
            Exists(
                MemberTier.objects.filter(member_id=OuterRef("pk"), program_id=survey.program_id, tier_id__in=tier_ids)
            )
        )
    return members.count()


def _percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def _member_labels(member_ids: set[int], program_id: int) -> dict[int, tuple[str, str]]:
    """(segments, tier) names per member, for the free-text answers: two grouped reads."""
    segments: dict[int, list[str]] = {}
    for member_id, name in (
        SegmentMembership.objects.filter(member_id__in=member_ids, left_at__isnull=True)
        .values_list("member_id", "segment__name")
        .order_by("segment__name")
    ):
        segments.setdefault(member_id, []).append(name)
    tiers = dict(
        MemberTier.objects.filter(member_id__in=member_ids, program_id=program_id).values_list(
            "member_id", "tier__name"
        )
    )
    return {m: (", ".join(segments.get(m, [])), tiers.get(m) or "") for m in member_ids}


def survey_results(*, survey: Survey) -> SurveyResults:
    """What staff see on the survey's results page: response rate, per question the distribution (and
    the mean and NPS for scored questions), the free-text answers with their member's segments and tier.
    A fixed number of queries whatever the number of answers."""
    questions = survey_questions(survey=survey)
    responses = SurveyResponse.objects.filter(survey=survey)
    count = responses.count()
    points = sum(responses.values_list("points", flat=True))
    answers = list(
        SurveyAnswer.objects.filter(response__survey=survey)
        .values_list("question_id", "score", "choices", "text", "response__member_id", "response__submitted_at")
        .order_by("response__submitted_at", "id")
    )
    by_question: dict[int, list[tuple]] = {}
    for row in answers:
        by_question.setdefault(row[0], []).append(row)
    text_members = {row[4] for row in answers if row[3]}
    labels = _member_labels(text_members, survey.program_id) if text_members else {}
    results = []
    for question in questions:
        rows = by_question.get(question.pk, [])
        result = QuestionResult(question=question, answers=0)
        if question.kind in (QuestionKind.RATING, QuestionKind.NPS):
            scores = [row[1] for row in rows if row[1] is not None]
            result.answers = len(scores)
            low, high = (1, 5) if question.kind == QuestionKind.RATING else (0, 10)
            counts = Counter(scores)
            result.distribution = [
                (str(v), counts.get(v, 0), _percent(counts.get(v, 0), len(scores))) for v in range(low, high + 1)
            ]
            result.mean = round(sum(scores) / len(scores), 2) if scores else None
            if question.kind == QuestionKind.NPS:
                result.nps = nps_of(scores)
        elif question.kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
            chosen = [row[2] for row in rows if row[2]]
            result.answers = len(chosen)
            counts = Counter(option for picked in chosen for option in picked)
            result.distribution = [
                (option, counts.get(option, 0), _percent(counts.get(option, 0), len(chosen)))
                for option in question.choices
            ]
        else:
            texts = [row for row in rows if row[3]]
            result.answers = len(texts)
            result.texts = [
                {
                    "text": row[3],
                    "member_id": row[4],
                    "submitted_at": row[5],
                    "segments": labels.get(row[4], ("", ""))[0],
                    "tier": labels.get(row[4], ("", ""))[1],
                }
                for row in texts
            ]
        results.append(result)
    targeted = survey_targeted_count(survey=survey)
    return SurveyResults(
        survey=survey,
        targeted=targeted,
        responses=count,
        response_rate=_percent(count, targeted) if targeted else None,
        points=points,
        questions=results,
    )


def survey_results_rows(*, survey: Survey) -> tuple[list[str], list[list]]:
    """The CSV export: one row per response, one column per question (scores, choices joined by
    ' | ', free text), with the member's number and the points given."""
    questions = survey_questions(survey=survey)
    header = ["response_id", "member_number", "submitted_at", "points"] + [
        f"Q{i}: {q.text}" for i, q in enumerate(questions, start=1)
    ]
    cells: dict[int, dict[int, str]] = {}
    for response_id, question_id, score, choices, text in SurveyAnswer.objects.filter(
        response__survey=survey
    ).values_list("response_id", "question_id", "score", "choices", "text"):
        value = str(score) if score is not None else (" | ".join(choices) if choices else text)
        cells.setdefault(response_id, {})[question_id] = value
    rows = []
    for response in (
        SurveyResponse.objects.filter(survey=survey).select_related("member").order_by("submitted_at", "id")
    ):
        answered = cells.get(response.pk, {})
        rows.append(
            [response.pk, response.member.member_number, response.submitted_at.isoformat(), response.points]
            + [answered.get(q.pk, "") for q in questions]
        )
    return header, rows
