"""Segments: create and edit, refresh (dynamic), upload (static), snapshot, delete."""

from __future__ import annotations

import csv
import io
import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connection, transaction

from loyalty.core import clock
from loyalty.core.errors import ApplicationError, Conflict, ValidationFailed
from loyalty.core.services import Actor, audit_record
from members.models import MemberStatus
from segments import rules as R
from segments import selectors
from segments.compiler import matching_members
from segments.models import RefreshTrigger, Segment, SegmentKind, SegmentMembership, SegmentRefresh, SegmentUpload
from segments.services.materialize import materialize

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

EDITABLE_FIELDS = ("name", "description", "rules", "auto_refresh")
UPLOAD_MODES = ("replace", "add")
UNKNOWN_IDS_KEPT = 1000
ID_HEADERS = ("member_number", "external_id", "member", "id", "member_id", "card_number")


def _actor_user(actor: Actor) -> AbstractBaseUser | None:
    return actor if actor is not None and getattr(actor, "pk", None) is not None else None


def _audit_value(value: Any) -> Any:
    """Audit rows keep flat values: rule trees are stored as their JSON text."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("A segment needs a name", code="name_required", fields={"name": ["Required."]})
    return name


def segment_create(
    *,
    name: str,
    kind: str = SegmentKind.DYNAMIC,
    description: str = "",
    rules: Any = None,
    auto_refresh: bool = True,
    actor: Actor = None,
) -> Segment:
    """Create a dynamic segment (``rules`` required and validated) or an empty static one
    (fill it with ``segment_static_upload``). Snapshots come from ``segment_snapshot_create``."""
    if kind not in (SegmentKind.DYNAMIC, SegmentKind.STATIC):
        raise ValidationFailed("kind must be dynamic or static", code="invalid_segment_kind")
    name = _clean_name(name)
    if kind == SegmentKind.DYNAMIC:
        if rules is None:
            raise ValidationFailed(
                "A dynamic segment needs rules", code="rules_required", fields={"rules": ["Required."]}
            )
        rules = selectors.rules_validate(rules=rules)
    elif rules is not None:
        raise ValidationFailed("A static segment has no rules", code="invalid_rules")
    now = clock.now()
    try:
        with transaction.atomic():
            segment = Segment.objects.create(
                name=name,
                description=description,
                kind=kind,
                rules=rules,
                auto_refresh=auto_refresh and kind == SegmentKind.DYNAMIC,
                created_by=_actor_user(actor),
                created_at=now,
                updated_at=now,
            )
            audit_record(
                actor=actor, action="segment.create", target=segment, after={"kind": kind, "rules": _audit_value(rules)}
            )
    except IntegrityError as exc:
        raise Conflict(f"A segment named '{name}' exists", code="segment_name_taken") from exc
    return segment


def segment_update(*, segment: Segment, actor: Actor = None, **changes: Any) -> Segment:
    """Change name, description, rules (dynamic only; validated) or auto_refresh. The new rules
    take effect at the next refresh."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed(f"Fields cannot be changed: {', '.join(sorted(unknown))}", code="field_not_updatable")
    if "name" in changes:
        changes["name"] = _clean_name(changes["name"])
    if "rules" in changes:
        if segment.kind != SegmentKind.DYNAMIC:
            raise Conflict("Only dynamic segments have rules", code="segment_not_dynamic")
        changes["rules"] = selectors.rules_validate(rules=changes["rules"], segment=segment)
    if changes.get("auto_refresh") and segment.kind != SegmentKind.DYNAMIC:
        raise Conflict("Only dynamic segments refresh", code="segment_not_dynamic")
    try:
        with transaction.atomic():
            locked = Segment.objects.select_for_update().get(pk=segment.pk)
            before = {field: getattr(locked, field) for field in changes}
            for field, value in changes.items():
                setattr(locked, field, value)
            locked.updated_at = clock.now()
            locked.save()
            changed = {k for k in changes if before[k] != changes[k]}
            if changed:
                audit_record(
                    actor=actor,
                    action="segment.update",
                    target=locked,
                    before={k: _audit_value(before[k]) for k in changed},
                    after={k: _audit_value(changes[k]) for k in changed},
                )
    except IntegrityError as exc:
        raise Conflict(f"A segment named '{changes.get('name')}' exists", code="segment_name_taken") from exc
    return locked


def segment_delete(*, segment: Segment, actor: Actor = None) -> None:
    """Delete a segment with its membership history, unless another segment's rules use it."""
    users = selectors.segments_referring_to(segment=segment)
    if users:
        raise Conflict(
            f"Segment is used by the rules of: {', '.join(s.name for s in users)}",
            code="segment_in_use",
            extra={"segments": [s.pk for s in users]},
        )
    with transaction.atomic():
        audit_record(actor=actor, action="segment.delete", target=segment, before={"name": segment.name})
        segment.delete()


def segment_refresh(*, segment: Segment, trigger: str = RefreshTrigger.MANUAL) -> SegmentRefresh:
    """Recompute a dynamic segment from its rules (one query) and write the difference."""
    segment = Segment.objects.get(pk=segment.pk)
    if segment.kind != SegmentKind.DYNAMIC:
        raise Conflict(f"A {segment.kind} segment is not refreshed from rules", code="segment_not_dynamic")
    tree = R.validate(segment.rules)
    query = matching_members(tree).values_list("pk").query
    select_sql, params = query.get_compiler(connection=connection).as_sql()
    return materialize(segment=segment, select_sql=select_sql, params=params, trigger=trigger)


def segments_refresh_all(*, trigger: str = RefreshTrigger.SCHEDULE) -> list[SegmentRefresh]:
    """Refresh every dynamic segment with ``auto_refresh``, segments that others refer to
    first. One failing segment is logged and does not stop the others."""
    segments = list(Segment.objects.filter(kind=SegmentKind.DYNAMIC, auto_refresh=True).order_by("pk"))
    done: list[SegmentRefresh] = []
    for segment in _dependency_order(segments):
        try:
            done.append(segment_refresh(segment=segment, trigger=trigger))
        except ApplicationError as exc:
            logger.error("segment %s (%s) not refreshed: %s", segment.pk, segment.name, exc)
    return done


def _dependency_order(segments: list[Segment]) -> list[Segment]:
    by_id = {s.pk: s for s in segments}
    ordered: list[Segment] = []
    state: dict[int, int] = {}

    def visit(segment: Segment) -> None:
        if state.get(segment.pk) == 2:
            return
        if state.get(segment.pk) == 1:  # a cycle (validation refuses them): keep going
            return
        state[segment.pk] = 1
        try:
            refs = R.referenced_segments(segment.rules or {})
        except (KeyError, TypeError):
            refs = set()
        for ref in sorted(refs):
            if ref in by_id:
                visit(by_id[ref])
        state[segment.pk] = 2
        ordered.append(segment)

    for segment in segments:
        visit(segment)
    return ordered


def segment_snapshot_create(*, segment: Segment, name: str = "", actor: Actor = None, refresh: bool = True) -> Segment:
    """Freeze a dynamic segment for a campaign: a new ``snapshot`` segment holding the members
    it has now (refreshed first unless ``refresh=False``). The snapshot never changes."""
    if segment.kind != SegmentKind.DYNAMIC:
        raise Conflict("Only a dynamic segment can be frozen", code="segment_not_dynamic")
    if refresh:
        segment_refresh(segment=segment, trigger=RefreshTrigger.MANUAL)
    now = clock.now()
    name = _clean_name(name or f"{segment.name} @ {now:%Y-%m-%d %H:%M}")
    try:
        with transaction.atomic():
            snapshot = Segment.objects.create(
                name=name,
                description=f"Snapshot of '{segment.name}' at {now:%Y-%m-%d %H:%M} UTC. {segment.description}".strip(),
                kind=SegmentKind.SNAPSHOT,
                rules=segment.rules,
                auto_refresh=False,
                source=segment,
                frozen_at=now,
                created_by=_actor_user(actor),
                created_at=now,
                updated_at=now,
            )
            materialize(
                segment=snapshot,
                select_sql="SELECT member_id FROM segments_segmentmembership WHERE segment_id = %s AND left_at IS NULL",
                params=[segment.pk],
                trigger=RefreshTrigger.SNAPSHOT,
            )
            audit_record(actor=actor, action="segment.snapshot", target=snapshot, after={"source": segment.pk})
    except IntegrityError as exc:
        raise Conflict(f"A segment named '{name}' exists", code="segment_name_taken") from exc
    return snapshot


# Static lists ----------------------------------------------------------------------------------


def parse_member_ids(content: bytes | str) -> list[str]:
    """Ids from a CSV: the ``member_number`` / ``external_id`` (or ``id``...) column when the
    first row is a header, else the first column. Blank cells are skipped; order kept,
    duplicates removed."""
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationFailed("The file is not UTF-8 text", code="invalid_upload") from None
    content = content.lstrip("\ufeff")
    try:
        dialect = csv.Sniffer().sniff(content[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(content), dialect)
    rows = [row for row in reader if any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    columns = [i for i, cell in enumerate(header) if cell in ID_HEADERS]
    if columns:
        rows = rows[1:]
    else:
        columns = [0]
    seen: dict[str, None] = {}
    for row in rows:
        for i in columns:
            if i < len(row) and row[i].strip():
                seen.setdefault(row[i].strip(), None)
    return list(seen)


def segment_static_upload(
    *,
    segment: Segment,
    content: bytes | str,
    filename: str = "",
    mode: str = "replace",
    actor: Actor = None,
) -> SegmentUpload:
    """Set (``replace``) or extend (``add``) a static segment's list from a CSV of member numbers
    or external ids. Ids that match no member (or an erased one) are reported, not fatal.
    The ids are loaded into a temporary table and matched in SQL."""
    if segment.kind != SegmentKind.STATIC:
        raise Conflict("Only a static segment takes an uploaded list", code="segment_not_static")
    if mode not in UPLOAD_MODES:
        raise ValidationFailed(f"mode must be one of {', '.join(UPLOAD_MODES)}", code="invalid_upload_mode")
    ids = parse_member_ids(content)
    if not ids:
        raise ValidationFailed("The file holds no member ids", code="empty_upload")
    numbers = {i: i.replace(" ", "").replace("-", "") for i in ids}
    table = f"segments_upload_{uuid.uuid4().hex[:12]}"
    with transaction.atomic():
        with connection.cursor() as cursor:
            on_commit = " ON COMMIT DROP" if connection.vendor == "postgresql" else ""
            cursor.execute(
                f"CREATE TEMPORARY TABLE {table} (raw varchar(200) PRIMARY KEY, number varchar(200)){on_commit}"
            )
            step = 5000
            for start in range(0, len(ids), step):
                chunk = ids[start : start + step]
                cursor.executemany(
                    f"INSERT INTO {table} (raw, number) VALUES (%s, %s)",  # noqa: S608
                    [(i[:200], numbers[i][:200]) for i in chunk],
                )
            matches = f"""SELECT m.id AS member_id, u.raw FROM {table} u JOIN members_member m
                    ON m.member_number = u.number AND m.status <> %s
                UNION
                SELECT m.id, u.raw FROM {table} u JOIN members_member m
                    ON m.external_id = u.raw AND m.status <> %s"""  # noqa: S608
            erased = [MemberStatus.ERASED, MemberStatus.ERASED]
            unknown_where = """NOT EXISTS (SELECT 1 FROM members_member m WHERE m.member_number = u.number AND m.status <> %s)
                AND NOT EXISTS (SELECT 1 FROM members_member m WHERE m.external_id = u.raw AND m.status <> %s)"""
            cursor.execute(f"SELECT COUNT(*) FROM {table} u WHERE {unknown_where}", erased)  # noqa: S608
            unknown_count = cursor.fetchone()[0]
            cursor.execute(
                f"SELECT u.raw FROM {table} u WHERE {unknown_where} ORDER BY u.raw LIMIT {UNKNOWN_IDS_KEPT}",  # noqa: S608
                erased,
            )
            unknown_ids = [row[0] for row in cursor.fetchall()]
            select_sql = f"SELECT DISTINCT x.member_id FROM ({matches}) x"  # noqa: S608
            params: list[Any] = list(erased)
            if mode == "add":
                select_sql += (
                    " UNION SELECT s.member_id FROM segments_segmentmembership s"
                    " WHERE s.segment_id = %s AND s.left_at IS NULL"
                )
                params.append(segment.pk)
            refresh = materialize(segment=segment, select_sql=select_sql, params=params, trigger=RefreshTrigger.UPLOAD)
            cursor.execute(f"DROP TABLE {table}")
        upload = SegmentUpload.objects.create(
            segment=segment,
            filename=filename[:255],
            mode=mode,
            rows=len(ids),
            matched=len(ids) - unknown_count,
            unknown=unknown_count,
            unknown_ids=unknown_ids,
            refresh=refresh,
            uploaded_by=_actor_user(actor),
            uploaded_at=clock.now(),
        )
        audit_record(
            actor=actor,
            action="segment.upload",
            target=segment,
            after={"file": filename, "mode": mode, "rows": len(ids), "unknown": unknown_count, "size": refresh.size},
        )
    return upload


def segment_static_members_add(
    *, segment: Segment, member_ids: Sequence[int], reason: str = "", actor: Actor = None
) -> SegmentRefresh | None:
    """Add members (by id) to a static segment's list, for loaders that know their members (the
    set-based counterpart of an ``add`` upload). Members already in, unknown ids and erased members
    are left out; when nobody is new nothing is written (a rerun of a loader adds nothing).
    Returns the refresh that added them, or None."""
    if segment.kind != SegmentKind.STATIC:
        raise Conflict("Only a static segment takes a list of members", code="segment_not_static")
    with transaction.atomic():
        Segment.objects.select_for_update().filter(pk=segment.pk).values_list("pk", flat=True).get()
        present = set(
            SegmentMembership.objects.filter(segment=segment, left_at__isnull=True).values_list("member_id", flat=True)
        )
        new = sorted({int(i) for i in member_ids} - present)
        if not new:
            return None
        table = f"segments_add_{uuid.uuid4().hex[:12]}"
        on_commit = " ON COMMIT DROP" if connection.vendor == "postgresql" else ""
        setup: list[tuple[str, list[Any]]] = [
            (f"CREATE TEMPORARY TABLE {table} (member_id bigint PRIMARY KEY){on_commit}", [])
        ]
        step = 500
        for start in range(0, len(new), step):
            chunk = new[start : start + step]
            values = ", ".join(["(%s)"] * len(chunk))
            setup.append((f"INSERT INTO {table} (member_id) VALUES {values}", chunk))  # noqa: S608
        select_sql = (
            f"SELECT a.member_id FROM {table} a JOIN members_member m ON m.id = a.member_id"  # noqa: S608
            " WHERE m.status <> %s"
            " UNION SELECT s.member_id FROM segments_segmentmembership s WHERE s.segment_id = %s AND s.left_at IS NULL"
        )
        refresh = materialize(
            segment=segment,
            select_sql=select_sql,
            params=[MemberStatus.ERASED, segment.pk],
            trigger=RefreshTrigger.UPLOAD,
            setup=setup,
        )
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {table}")
        if refresh.entered:
            audit_record(
                actor=actor,
                action="segment.members_add",
                target=segment,
                after={"added": refresh.entered, "size": refresh.size, "reason": reason},
            )
    return refresh


EXPORT_COLUMNS = ("member_number", "external_id", "first_name", "last_name", "email", "status", "entered_at")


def segment_members_export(*, segment: Segment, actor: Actor) -> Iterator[tuple[Any, ...]]:
    """The segment's current members as CSV rows (header first), recorded as
    ``segment.members_exported`` (who, how many) before any row is read: personal data leaves the
    system. Rows are streamed from the database in member-number order, not held in memory."""
    rows = (
        SegmentMembership.objects.filter(segment=segment, left_at__isnull=True)
        .order_by("member__member_number")
        .values_list(
            "member__member_number",
            "member__external_id",
            "member__first_name",
            "member__last_name",
            "member__email",
            "member__status",
            "entered_at",
        )
    )
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="segment.members_exported",
            target=segment,
            after={"members": rows.count(), "columns": list(EXPORT_COLUMNS)},
        )

    def stream() -> Iterator[tuple[Any, ...]]:
        yield EXPORT_COLUMNS
        for row in rows.iterator(chunk_size=2000):
            yield (*row[:-1], row[-1].isoformat() if row[-1] else "")

    return stream()
