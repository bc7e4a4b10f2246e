"""Renders an API definition with a conversation's attributes and sends it safely."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .models import ApiDefinition


@dataclass(frozen=True)
class CallOutcome:
    ok: bool
    status: int | None
    body: Any
    saved: dict[str, Any]
    error_code: str
    duration_ms: int
    log_id: int | None = None


def call_api(
    definition: ApiDefinition,
    attributes: Mapping[str, Any],
    *,
    origin: str,
    conversation_id: str = "",
) -> CallOutcome:
    raise NotImplementedError
