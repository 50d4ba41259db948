"""Engagement benchmark (surveys and referrals), in one process against PostgreSQL.

1. Survey results: a survey of 5 questions (rating, NPS, one choice, several choices, free text) with
   --responses responses among --members members (generated in the database), then the staff results
   page's data (`survey_results`: response rate, distributions, NPS, latest free text) and the CSV rows
   (`survey_results_rows`), each timed over --rounds runs (median).
2. Purchases through the purchase workflow (`purchase_record`, no HTTP): members never referred, referred
   friends whose first purchase qualifies (both rewarded in the purchase's transaction), and the same
   friends' later purchases (the referral hook's one extra read), --purchases each, with the statements
   one purchase sends.

    .venv/bin/python bench/surveys_referrals_bench.py [--members 1000000 --responses 200000 --purchases 500]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _setup import insert_select, setup


def timed(fn, rounds: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--responses", type=int, default=200_000)
    parser.add_argument("--purchases", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setup("loyalty_bench_surveys_referrals")  # its own base: engagement_bench.py keeps loyalty_bench_engagement

    from decimal import Decimal

    from django.db import connection, transaction

    from loyalty.activity.services import enrollment_record, purchase_record
    from loyalty.core import clock
    from loyalty.engagement.models import (
        QuestionKind,
        ReferralSettings,
        Survey,
        SurveyAnswer,
        SurveyQuestion,
        SurveyResponse,
    )
    from loyalty.engagement.selectors.surveys import survey_results, survey_results_rows
    from loyalty.ledger.models import Account
    from loyalty.ledger.selectors import program_default
    from members.models import EnrollmentSource, Member

    program = program_default()
    now = clock.now()
    survey = Survey.objects.create(
        program=program, title="Bench survey", is_active=True, created_at=now, updated_at=now
    )
    kinds = [
        (QuestionKind.RATING, []),
        (QuestionKind.NPS, []),
        (QuestionKind.SINGLE, ["North", "South", "East"]),
        (QuestionKind.MULTIPLE, ["Bread", "Milk", "Fruit", "Cheese"]),
        (QuestionKind.TEXT, []),
    ]
    questions = [
        SurveyQuestion.objects.create(survey=survey, position=i, kind=kind, text=f"Question {i}", choices=choices)
        for i, (kind, choices) in enumerate(kinds, 1)
    ]
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # generated rows: no per-row FK triggers
        insert_select(
            cursor,
            Member,
            {
                "member_number": "'7' || lpad(i::text, 11, '0')",
                "referral_code": "'E' || lpad(i::text, 10, '0')",
                "first_name": "'Bench'",
                "last_name": "'Member ' || i",
                "status": "'active'",
                "enrollment_source": "'import'",
                "enrolled_at": ("%s", [now]),
                "updated_at": ("%s", [now]),
            },
            "generate_series(1, %s) AS i",
            [args.members],
        )
        members = "(SELECT id FROM members_member WHERE member_number LIKE '7%%') AS m"
        insert_select(
            cursor,
            Account,
            {"program_id": ("%s", [program.pk]), "kind": "'member'", "member_id": "m.id", "opened_at": ("%s", [now])},
            members,
            [],
        )
        insert_select(
            cursor,
            SurveyResponse,
            {
                "survey_id": ("%s", [survey.pk]),
                "member_id": "m.id",
                "submitted_at": ("%s::timestamptz - (m.id %% 1000) * interval '1 minute'", [now]),
                "points": "50",
                "note": "''",
            },
            f"(SELECT id FROM members_member WHERE member_number LIKE '7%%' ORDER BY id LIMIT {int(args.responses)}) AS m",
            [],
        )
        responses = "(SELECT id FROM engagement_surveyresponse WHERE survey_id = %s) AS r"
        values = {
            QuestionKind.RATING: {"score": "1 + (r.id * 7) %% 5", "choices": "'[]'::jsonb", "text": "''"},
            QuestionKind.NPS: {"score": "(r.id * 13) %% 11", "choices": "'[]'::jsonb", "text": "''"},
            QuestionKind.SINGLE: {
                "score": "NULL",
                "choices": "jsonb_build_array((ARRAY['North','South','East'])[1 + r.id %% 3])",
                "text": "''",
            },
            QuestionKind.MULTIPLE: {
                "score": "NULL",
                "choices": "jsonb_build_array('Milk', (ARRAY['Bread','Fruit','Cheese'])[1 + r.id %% 3])",
                "text": "''",
            },
            QuestionKind.TEXT: {
                "score": "NULL",
                "choices": "'[]'::jsonb",
                "text": "CASE WHEN r.id %% 4 = 0 THEN 'Comment number ' || r.id ELSE '' END",
            },
        }
        for question in questions:
            insert_select(
                cursor,
                SurveyAnswer,
                {"response_id": "r.id", "question_id": ("%s", [question.pk]), **values[question.kind]},
                responses,
                [survey.pk],
            )
    print(
        f"generated {args.members:,} members with accounts, {args.responses:,} responses x 5 answers"
        f" in {time.perf_counter() - started:.1f} s"
    )
    seconds, results = timed(lambda: survey_results(survey=survey), args.rounds)
    nps = results.questions[1].nps
    print(
        f"survey_results: {seconds:.3f} s (median of {args.rounds}); targeted {results.targeted:,},"
        f" responses {results.responses:,}, rate {results.response_rate}%, NPS {nps.score} [{nps.low}, {nps.high}]"
    )
    seconds, rows = timed(lambda: list(survey_results_rows(survey=survey)[1]), 1)
    print(f"survey_results_rows (CSV rows, streamed): {seconds:.3f} s for {len(rows):,} rows")

    # --- purchases: plain, referred (qualifying), referred (after the reward) --------------------
    ReferralSettings.objects.create(program=program, min_spend=Decimal("1"), updated_at=now)
    n = args.purchases
    referrer = enrollment_record(source=EnrollmentSource.STAFF, email="referrer@example.com")
    plain = [enrollment_record(source=EnrollmentSource.STAFF, email=f"plain{i}@example.com") for i in range(n)]
    friends = [
        enrollment_record(
            source=EnrollmentSource.STAFF, email=f"friend{i}@example.com", referral_code=referrer.referral_code
        )
        for i in range(n)
    ]
    lines = [{"sku": "A1", "category": "food", "quantity": "1", "amount": "42.50"}]
    counter = iter(range(10**9))

    def buy(member) -> None:
        purchase_record(
            partner=None, member=member, external_id=f"b{next(counter)}", occurred_at=clock.now(), lines=lines
        )

    for member in plain[:20]:  # warm: configuration cached
        buy(member)

    def per_purchase(members) -> float:
        start = time.perf_counter()
        for member in members:
            buy(member)
        return (time.perf_counter() - start) / len(members) * 1000

    def statements(member) -> int:
        sent: list[str] = []
        with connection.execute_wrapper(lambda execute, sql, *rest: sent.append(sql) or execute(sql, *rest)):
            buy(member)
        return len(sent)

    plain_ms = per_purchase(plain)
    qualifying_ms = per_purchase(friends[:-1])
    plain_statements = statements(plain[0])
    qualifying_statements = statements(friends[-1])
    later_ms = per_purchase(friends)
    later_statements = statements(friends[0])
    plain_again_ms = per_purchase(plain)  # the same plain purchases again: how much the machine moves
    print(
        f"purchases (workflow, one process), {n} each: never referred {plain_ms:.2f} ms ({plain_statements} statements);"
        f" referred, first qualifying (both rewarded) {qualifying_ms:.2f} ms ({qualifying_statements});"
        f" referred, later {later_ms:.2f} ms ({later_statements}); never referred again {plain_again_ms:.2f} ms"
    )
    print(f"referrer's balance: {Account.objects.get(member=referrer).available:,} points (= {n} x 500)")


if __name__ == "__main__":
    main()
