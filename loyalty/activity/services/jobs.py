"""The scheduled jobs staff may run now from the admin (the "Jobs" page): each is the owning app's
own job service, run inline in the request (when Celery has no broker; with one, the admin queues
the task and ``staff_job_queued`` records that), then audited as ``job.<name>`` with its result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loyalty.core.errors import ValidationFailed
from loyalty.core.models import AuditEvent
from loyalty.core.services import Actor, audit_record
from loyalty.ledger import services as ledger
from loyalty.ledger.models import Program
from loyalty.tiers import services as tiers
from segments import services as segments
from segments.models import RefreshTrigger

POINTS, PROGRAM = "activity.runpoints_staffjob", "activity.runprogram_staffjob"


@dataclass(frozen=True)
class JobSpec:
    name: str
    label: str
    what: str
    permission: str
    run: Callable[[Actor], Any]
    task: str  # the Celery task of the schedule


def _segments(actor: Actor) -> dict[str, int]:
    refreshes = segments.segments_refresh_all(trigger=RefreshTrigger.MANUAL)
    return {"segments": len(refreshes), "members": sum(r.size for r in refreshes)}


def _scores(actor: Actor) -> dict[str, Any]:
    run = segments.scores_compute(actor=actor)
    return {"members_scored": run.members_scored, "clv_basis": run.clv_basis}


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec(
            "mature_points",
            "Mature pending points",
            "Pending points whose return window has passed become available (every 15 minutes).",
            POINTS,
            lambda actor: {"accounts": ledger.mature_pending_lots()},
            "ledger.mature_pending_lots",
        ),
        JobSpec(
            "expire_points",
            "Expire due points",
            "Points past their expiry date expire (hourly).",
            POINTS,
            lambda actor: {"accounts": ledger.expire_due_lots()},
            "ledger.expire_due_lots",
        ),
        JobSpec(
            "evaluate_tiers",
            "Evaluate tiers",
            "Period ends, downgrades after grace and ends of tiers set by hand (nightly).",
            PROGRAM,
            lambda actor: dict(tiers.tiers_evaluate()),
            "tiers.evaluate",
        ),
        JobSpec(
            "refresh_segments",
            "Refresh dynamic segments",
            "Every dynamic segment with automatic refresh counts its members again (nightly).",
            PROGRAM,
            _segments,
            "segments.refresh_dynamic_segments",
        ),
        JobSpec(
            "compute_scores",
            "Compute RFM and CLV scores",
            "Scores every member again (nightly).",
            PROGRAM,
            _scores,
            "segments.compute_scores",
        ),
    )
}


def staff_job(name: str) -> JobSpec:
    spec = JOBS.get(name)
    if spec is None:
        raise ValidationFailed(f"There is no job '{name}'", code="unknown_job")
    return spec


def _target() -> Program | None:
    return Program.objects.filter(is_default=True).first()


def staff_job_run(*, name: str, actor: Actor) -> dict[str, Any]:
    """Run one job now, in this process, and record who ran it and what it did."""
    spec = staff_job(name)
    result = spec.run(actor)
    target = _target()
    if target is not None:
        audit_record(actor=actor, action=f"job.{name}", target=target, reason="run now from the admin", after=result)
    return result


def staff_job_queued(*, name: str, actor: Actor) -> AuditEvent | None:
    """Record that staff queued one job for the workers."""
    spec = staff_job(name)
    target = _target()
    if target is None:
        return None
    return audit_record(
        actor=actor, action=f"job.{spec.name}", target=target, reason="queued from the admin", after={"queued": True}
    )
