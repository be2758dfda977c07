"""The one place that reads the time, so tests can set the clock (models and security use it)."""

from __future__ import annotations

from datetime import UTC, datetime

_frozen: datetime | None = None


def now() -> datetime:
    """Current time as naive UTC (every column stores naive UTC)."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC).replace(tzinfo=None)


def set_now(value: datetime | None) -> None:
    """Freeze the clock at `value` (naive UTC), or unfreeze it with None. For tests."""
    global _frozen
    _frozen = value
