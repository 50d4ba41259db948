"""Registry of personal-data exporters and erasers.

Each app that holds data about a member registers one exporter (returns a JSON-ready dict
of what it holds on the member) and one eraser (removes or pseudonymizes that data, keeping
non-personal accounting records). ``members.services.member_export`` / ``member_erase`` run
them all. Apps register from their ``AppConfig.ready``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Exporter = Callable[[Any], Any]
Eraser = Callable[[Any], None]


@dataclass(frozen=True)
class PrivacyHandler:
    section: str
    exporter: Exporter
    eraser: Eraser


_handlers: dict[str, PrivacyHandler] = {}


def register(*, section: str, exporter: Exporter, eraser: Eraser) -> None:
    _handlers[section] = PrivacyHandler(section=section, exporter=exporter, eraser=eraser)


def handlers() -> list[PrivacyHandler]:
    return [_handlers[key] for key in sorted(_handlers)]
