"""Changes staff make to earning rules and event rules (in the admin), each saved with an audit row
of what changed (the configuration stamp triggers renew every process's cached rules)."""

from __future__ import annotations

from loyalty.activity.models import EarningRule, EventRule
from loyalty.core.services import Actor, model_delete_audited, model_save_audited

EARNING_RULE_FIELDS = tuple(f.name for f in EarningRule._meta.concrete_fields if not f.primary_key)
EVENT_RULE_FIELDS = tuple(f.name for f in EventRule._meta.concrete_fields if not f.primary_key)


def earning_rule_save(*, rule: EarningRule, actor: Actor, created: bool, reason: str = "") -> EarningRule:
    return model_save_audited(
        instance=rule, actor=actor, created=created, fields=EARNING_RULE_FIELDS, action="earning_rule", reason=reason
    )


def earning_rule_delete(*, rule: EarningRule, actor: Actor, reason: str = "") -> None:
    model_delete_audited(instance=rule, actor=actor, fields=EARNING_RULE_FIELDS, action="earning_rule", reason=reason)


def event_rule_save(*, rule: EventRule, actor: Actor, created: bool, reason: str = "") -> EventRule:
    return model_save_audited(
        instance=rule, actor=actor, created=created, fields=EVENT_RULE_FIELDS, action="event_rule", reason=reason
    )


def event_rule_delete(*, rule: EventRule, actor: Actor, reason: str = "") -> None:
    model_delete_audited(instance=rule, actor=actor, fields=EVENT_RULE_FIELDS, action="event_rule", reason=reason)
