"""How many rows a bulk UPDATE or DELETE changed: the success test of every conditional write."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Result


def rows_changed(result: Result[Any]) -> int:
    """`rowcount` of an UPDATE or DELETE (typed as a plain Result by `Session.execute`)."""
    return cast(CursorResult[Any], result).rowcount
