"""Reads of surveys: which surveys a member may answer, and the results for staff."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum

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
    """Pure: the NPS of 0–10 scores and its normal-approximation 95% interval (``nps_of_counts``)."""
    return nps_of_counts(Counter(scores))


def nps_of_counts(counts: Mapping[int, int]) -> Nps:
    """Pure: the NPS of 0–10 scores given as {score: answers}, and its normal-approximation 95%
    interval. With n answers and shares p (promoters) and d (detractors): NPS = 100 (p − d),
    Var(p − d) = (p + d − (p − d)²) / n."""
    n = sum(counts.values())
    promoters = sum(c for s, c in counts.items() if s >= 9)
    detractors = sum(c for s, c in counts.items() if s <= 6)
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


TEXTS_SHOWN = 200

# Options chosen per question, counted by the database: one row per (answer, option) from the JSON
# array (PostgreSQL jsonb_array_elements_text; SQLite json_each for the embedded demo database).
_CHOICES_SQL = {
    "postgresql": (
        "SELECT a.{question}, c.value, count(*) FROM {answer} a JOIN {response} r ON r.id = a.{response_id}"
        " CROSS JOIN LATERAL jsonb_array_elements_text(a.{choices}) AS c(value)"
        " WHERE r.{survey} = %s AND a.{question} IN ({ids}) GROUP BY 1, 2"
    ),
    "sqlite": (
        "SELECT a.{question}, c.value, count(*) FROM {answer} a JOIN {response} r ON r.id = a.{response_id},"
        " json_each(a.{choices}) AS c WHERE r.{survey} = %s AND a.{question} IN ({ids}) GROUP BY 1, 2"
    ),
}


def _choice_counts(survey: Survey, question_ids: list[int]) -> tuple[dict[int, Counter], Counter]:
    """Per choice question: how many members chose each option, and how many answered it."""
    if not question_ids:
        return {}, Counter()
    answered = Counter(
        dict(
            SurveyAnswer.objects.filter(response__survey=survey, question_id__in=question_ids)
            .exclude(choices=[])
            .values_list("question_id")
            .annotate(n=Count("id"))
            .order_by()
        )
    )
    quote = connection.ops.quote_name
    answer, response = SurveyAnswer._meta, SurveyResponse._meta
    sql = _CHOICES_SQL["postgresql" if connection.vendor == "postgresql" else "sqlite"].format(
        answer=quote(answer.db_table),
        response=quote(response.db_table),
        question=quote(answer.get_field("question").column),
        response_id=quote(answer.get_field("response").column),
        choices=quote(answer.get_field("choices").column),
        survey=quote(response.get_field("survey").column),
        ids=", ".join(["%s"] * len(question_ids)),
    )
    counts: dict[int, Counter] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [survey.pk, *question_ids])
        for question_id, option, n in cursor.fetchall():
            counts.setdefault(question_id, Counter())[option] = n
    return counts, answered


def survey_results(*, survey: Survey, texts_shown: int = TEXTS_SHOWN) -> SurveyResults:
    """What staff see on the survey's results page: response rate, per question the distribution (and
    the mean and NPS for scored questions), the latest ``texts_shown`` free-text answers of each text
    question with their member's segments and tier (all of them are in the CSV). Scores are counted
    by the database (GROUP BY question and score); choices are counted from their rows; a fixed
    number of queries whatever the number of answers."""
    questions = survey_questions(survey=survey)
    kinds = {q.pk: q.kind for q in questions}
    totals = SurveyResponse.objects.filter(survey=survey).aggregate(n=Count("id"), points=Sum("points"))
    answers = SurveyAnswer.objects.filter(response__survey=survey)
    score_counts: dict[int, Counter] = {}
    for question_id, score, n in (
        answers.filter(score__isnull=False).values_list("question_id", "score").annotate(n=Count("id")).order_by()
    ):
        score_counts.setdefault(question_id, Counter())[score] = n
    choice_ids = [pk for pk, kind in kinds.items() if kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE)]
    choice_counts, choice_answers = _choice_counts(survey, choice_ids)
    text_ids = [pk for pk, kind in kinds.items() if kind == QuestionKind.TEXT]
    text_answers = dict(
        answers.filter(question_id__in=text_ids)
        .exclude(text="")
        .values_list("question_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    texts: dict[int, list[tuple]] = {}
    for question_id in text_ids:
        texts[question_id] = list(
            answers.filter(question_id=question_id)
            .exclude(text="")
            .values_list("text", "response__member_id", "response__submitted_at")
            .order_by("-response__submitted_at", "-id")[:texts_shown]
        )
    text_members = {row[1] for rows in texts.values() for row in rows}
    labels = _member_labels(text_members, survey.program_id) if text_members else {}
    results = []
    for question in questions:
        result = QuestionResult(question=question, answers=0)
        if question.kind in (QuestionKind.RATING, QuestionKind.NPS):
            counts = score_counts.get(question.pk, Counter())
            n = sum(counts.values())
            result.answers = n
            low, high = (1, 5) if question.kind == QuestionKind.RATING else (0, 10)
            result.distribution = [(str(v), counts[v], _percent(counts[v], n)) for v in range(low, high + 1)]
            result.mean = round(sum(v * c for v, c in counts.items()) / n, 2) if n else None
            if question.kind == QuestionKind.NPS:
                result.nps = nps_of_counts(counts)
        elif question.kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
            counts = choice_counts.get(question.pk, Counter())
            n = choice_answers[question.pk]
            result.answers = n
            result.distribution = [(option, counts[option], _percent(counts[option], n)) for option in question.choices]
        else:
            result.answers = text_answers.get(question.pk, 0)
            result.texts = [
                {
                    "text": text,
                    "member_id": member_id,
                    "submitted_at": submitted_at,
                    "segments": labels.get(member_id, ("", ""))[0],
                    "tier": labels.get(member_id, ("", ""))[1],
                }
                for text, member_id, submitted_at in texts.get(question.pk, [])
            ]
        results.append(result)
    count = totals["n"] or 0
    targeted = survey_targeted_count(survey=survey)
    return SurveyResults(
        survey=survey,
        targeted=targeted,
        responses=count,
        response_rate=_percent(count, targeted) if targeted else None,
        points=totals["points"] or 0,
        questions=results,
    )


def survey_results_rows(*, survey: Survey) -> tuple[list[str], Iterator[list]]:
    """The CSV export: one row per response, one column per question (scores, choices joined by
    ' | ', free text), with the member's number and the points given. The rows are a generator over
    two ordered streams (responses, answers) read in chunks: memory stays flat whatever the count."""
    questions = survey_questions(survey=survey)
    header = ["response_id", "member_number", "submitted_at", "points"] + [
        f"Q{i}: {q.text}" for i, q in enumerate(questions, start=1)
    ]
    return header, _result_rows(survey, [q.pk for q in questions])


def _result_rows(survey: Survey, question_ids: list[int]) -> Iterator[list]:
    responses = (
        SurveyResponse.objects.filter(survey=survey)
        .values_list("pk", "member__member_number", "submitted_at", "points")
        .order_by("pk")
        .iterator(chunk_size=5000)
    )
    answers = (
        SurveyAnswer.objects.filter(response__survey=survey)
        .values_list("response_id", "question_id", "score", "choices", "text")
        .order_by("response_id")
        .iterator(chunk_size=5000)
    )
    pending = next(answers, None)
    for response_id, member_number, submitted_at, points in responses:
        cells: dict[int, str] = {}
        while pending is not None and pending[0] <= response_id:
            if pending[0] == response_id:
                _, question_id, score, choices, text = pending
                cells[question_id] = str(score) if score is not None else (" | ".join(choices) if choices else text)
            pending = next(answers, None)
        yield [response_id, member_number, submitted_at.isoformat(), points] + [cells.get(q, "") for q in question_ids]
