"""Everything that writes segments and scores. Import the public names from here."""

from segments.services.scores import scores_compute
from segments.services.segments import (
    parse_member_ids,
    segment_create,
    segment_delete,
    segment_members_export,
    segment_refresh,
    segment_snapshot_create,
    segment_static_members_add,
    segment_static_upload,
    segment_update,
    segments_refresh_all,
)

__all__ = [
    "parse_member_ids",
    "scores_compute",
    "segment_create",
    "segment_delete",
    "segment_members_export",
    "segment_refresh",
    "segment_snapshot_create",
    "segment_static_members_add",
    "segment_static_upload",
    "segment_update",
    "segments_refresh_all",
]
