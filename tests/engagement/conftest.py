import datetime as dt

import pytest

from loyalty.activity.models import EventRule, EventType
from loyalty.activity.services import enrollment_record
from loyalty.core import clock
from loyalty.engagement.models import QuestionKind, Survey, SurveyQuestion
from loyalty.ledger.selectors import program_default
from members.models import EnrollmentSource

T = dt.datetime(2030, 3, 10, 12, tzinfo=dt.UTC)


@pytest.fixture
def now():
    clock.set_now(T)
    return T


@pytest.fixture
def enroll(now):
    counter = iter(range(1, 10_000))

    def make(**profile):
        n = next(counter)
        profile.setdefault("email", f"person{n}@example.com")
        profile.setdefault("first_name", f"Person{n}")
        profile.setdefault("last_name", f"Family{n}")
        return enrollment_record(source=EnrollmentSource.STAFF, **profile)

    return make


@pytest.fixture
def survey_rule(now):
    kind = EventType.objects.get(code="survey_completed")
    return EventRule.objects.create(program=program_default(), event_type=kind, points=50)


@pytest.fixture
def survey(now):
    made = Survey.objects.create(
        program=program_default(), title="How was your visit?", is_active=True, created_at=T, updated_at=T
    )
    SurveyQuestion.objects.create(survey=made, position=1, kind=QuestionKind.RATING, text="Rate the store")
    SurveyQuestion.objects.create(survey=made, position=2, kind=QuestionKind.NPS, text="Recommend us?")
    SurveyQuestion.objects.create(
        survey=made, position=3, kind=QuestionKind.SINGLE, text="Which store?", choices=["North", "South"]
    )
    SurveyQuestion.objects.create(
        survey=made,
        position=4,
        kind=QuestionKind.MULTIPLE,
        text="What did you buy?",
        choices=["Bread", "Milk", "Fruit"],
        required=False,
    )
    SurveyQuestion.objects.create(
        survey=made, position=5, kind=QuestionKind.TEXT, text="Anything else?", required=False
    )
    return made


def answers_for(survey, rating=4, nps=9, store="North", bought=("Milk",), text="Lovely staff"):
    q = {question.position: question.pk for question in survey.questions.all()}
    data = {f"q{q[1]}": str(rating), f"q{q[2]}": str(nps), f"q{q[3]}": store, f"q{q[4]}": list(bought)}
    if text:
        data[f"q{q[5]}"] = text
    return data
