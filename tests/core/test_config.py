"""Configuration read from memory (loyalty.core.config) stays exact: database triggers renew the
stamp whenever a configuration table changes, and only then is it read again."""

import pytest
from django.db import connection, transaction

from loyalty.activity.models import EarningRule
from loyalty.core.config import config_cached, config_scope, config_stamp
from loyalty.ledger import services as ledger
from loyalty.ledger.models import Account
from loyalty.ledger.selectors import program_default
from tests.factories import MemberFactory


def _loads(key):
    calls = []

    def load():
        calls.append(1)
        return len(calls)

    return lambda: config_cached(key, load), calls


@pytest.mark.django_db
def test_a_cached_value_is_loaded_once_until_configuration_changes():
    read, calls = _loads("test-once")
    assert read() == 1 and read() == 1 and len(calls) == 1
    EarningRule.objects.create(program=program_default(), name="New rule", kind="min_spend_bonus", bonus_points=5)
    assert read() == 2, "a new earning rule renews the stamp: the value is loaded again"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        lambda p: ledger.program_create(name="Another program"),
        lambda p: type(p).objects.filter(pk=p.pk).update(pending_days=3),  # no signal: the trigger sees it
        lambda p: EarningRule.objects.create(program=p, name="r", kind="min_spend_bonus"),
    ],
    ids=["program insert", "program update without save()", "rule insert"],
)
def test_every_kind_of_write_to_a_configuration_table_renews_the_stamp(change):
    program = program_default()
    before = config_stamp()
    change(program)
    assert config_stamp() != before


@pytest.mark.django_db
def test_member_accounts_are_not_configuration_but_system_accounts_are():
    program = program_default()
    before = config_stamp()
    account = ledger.account_open(member=MemberFactory(), program=program)
    Account.objects.filter(pk=account.pk).update(available=5)
    assert config_stamp() == before, "busy member accounts leave the stamp alone"
    ledger.system_account(program=program, kind="adjustment", partner=None)  # exists already: no write
    assert config_stamp() == before
    Account.objects.filter(program=program, kind="breakage").update(opened_at=account.opened_at)
    assert config_stamp() != before


@pytest.mark.django_db(transaction=True)
def test_a_stamp_seen_inside_a_rolled_back_transaction_never_comes_back():
    """Random stamps: a value cached while looking at uncommitted configuration cannot be taken
    for the committed configuration later."""
    committed = config_stamp()
    with pytest.raises(RuntimeError), transaction.atomic():
        ledger.program_create(name="Rolled back")
        inside = config_stamp()
        assert inside != committed
        raise RuntimeError
    assert config_stamp() == committed
    ledger.program_create(name="Committed")
    assert config_stamp() not in (committed, inside)


@pytest.mark.django_db
def test_inside_a_scope_the_stamp_is_read_once():
    with config_scope():
        first = config_stamp()
        EarningRule.objects.create(program=program_default(), name="During", kind="min_spend_bonus")
        assert config_stamp() == first, "one request sees configuration as it was when it first looked"
    assert config_stamp() != first


@pytest.mark.django_db
def test_without_the_stamp_row_nothing_is_cached():
    """A flushed database (tests) has no stamp row: every read goes to the database."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM core_configstamp")
    read, calls = _loads("test-no-row")
    assert (read(), read()) == (1, 2)
    EarningRule.objects.create(program=program_default(), name="Writes the row", kind="min_spend_bonus")
    assert read() == 3 and read() == 3, "the next configuration change writes the row again"


@pytest.mark.django_db
def test_cached_programs_and_system_accounts_are_never_shared_instances():
    first, second = program_default(), program_default()
    assert first == second and first is not second
    first.pending_days = 99  # a caller's change stays with the caller
    assert program_default().pending_days != 99
    issued = ledger.system_account(program=first, kind="issued")
    again = ledger.system_account(program=first, kind="issued")
    assert issued == again and issued is not again


def test_a_frozen_row_refuses_mutable_values_and_cannot_be_changed():
    import dataclasses

    from loyalty.core.config import FrozenRow
    from loyalty.ledger.models import Program

    row = FrozenRow.of(Program(pk=7, name="Frozen"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.values = ()
    assert (row.pk, row.instance().name, row.instance() is row.instance()) == (7, "Frozen", False)
    with pytest.raises(TypeError, match="mutable"):
        FrozenRow.of(EarningRule(pk=1, name="r", categories=["food"]))


@pytest.mark.django_db
def test_cached_earning_rules_are_frozen():
    import dataclasses

    from loyalty.activity.services.purchases import _rules_for
    from loyalty.core import clock

    program = program_default()
    EarningRule.objects.create(program=program, name="Food", kind="category_multiplier", categories=["food"])
    (rule,) = [r for r in _rules_for(program, None, clock.now()) if r.name == "Food"]
    assert rule.categories == ("food",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.name = "changed"


def test_migrations_do_not_import_the_runtime_configuration_module():
    """The trigger SQL lives verbatim in the migrations: editing loyalty.core.config cannot
    rewrite migration history."""
    from pathlib import Path

    import loyalty

    root = Path(loyalty.__file__).parent
    for migration in root.glob("*/migrations/0*.py"):
        text = migration.read_text()
        assert "from loyalty.core.config" not in text and "import loyalty.core.config" not in text, migration
