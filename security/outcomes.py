"""What a use case returns: one small type per way it can end, for the view to translate."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from models import User, UserSession


class Reason(Enum):
    """Why a use case refused; the view picks the form field the message belongs to."""

    THROTTLED = "throttled"
    # bandit B105: reasons, not secrets.
    WRONG_SECRET = "wrong secret"  # nosec B105
    WRONG_PASSWORD = "wrong password"  # nosec B105
    WRONG_CODE = "wrong code"
    FIRST_CODE_GONE = "first code gone"
    TAKEN = "taken"
    GONE = "gone"
    # A way in closed for browsers the account has not signed in with (the cap was reached).
    CLOSED = "closed"
    # Fewer secrets than the action needs were typed: nothing was checked or counted.
    INCOMPLETE = "incomplete"
    # Too many demo sandboxes at once.
    FULL = "full"
    # Not something a demo sandbox can do (have an email address).
    DEMO = "demo account"


@dataclass(frozen=True)
class Refused:
    """Nothing changed but the counted attempt and its failure event; `message` says why."""

    reason: Reason
    message: str


@dataclass(frozen=True)
class Started:
    """A new server-side session for this browser: the cookie gets `token`."""

    user: User
    token: str
    row: UserSession
    # A new device-cookie token, when this browser was not yet a trusted device of the account.
    device_token: str | None = None
    # The account had other trusted devices before this one: the owner is told.
    new_device: bool = False


@dataclass(frozen=True)
class CodesUsed:
    """The backup codes a success spent (two in a recovery of an account with an app)."""

    numbers: tuple[int, ...]
    codes_left: int


@dataclass(frozen=True)
class SignedIn:
    session: Started
    # Failed attempts on the account since it was last used, to tell the owner.
    failures_before: int = 0
    codes_used: CodesUsed | None = None


@dataclass(frozen=True)
class Recovered:
    """In with a backup code: every other session ended, a new password comes next."""

    session: Started
    failures_before: int
    codes_used: CodesUsed


@dataclass(frozen=True)
class Secured:
    """Every session ended and every code voided; this browser's new session must choose a new
    password first."""

    session: Started


@dataclass(frozen=True)
class NeedsSecondFactor:
    """The first factor passed; the half-finished log-in waits on the server under `token`."""

    pending_token: str


@dataclass(frozen=True)
class SheetReady:
    """A new sheet waits on the server for this session; `in_use` when the set works already."""

    public_id: str
    in_use: bool
    # New codes end every other session of the account.
    sessions_ended: int = 0


@dataclass(frozen=True)
class CodesSaved:
    """The sheet was typed back: its set is the account's, and the plaintext is gone.
    `old_voided`: this made the old set stop working (it was still in use until now)."""

    public_id: str
    old_voided: bool


@dataclass(frozen=True)
class CodeIsValid:
    """What "Check a saved code" found: code #`number` of set `set_id`, unused, and not spent by
    the check. `waiting`: the set is a new sheet's, not yet in use."""

    number: int
    set_id: str
    waiting: bool = False


@dataclass(frozen=True)
class PasswordChanged:
    sessions_ended: int


@dataclass(frozen=True)
class AppTurnedOn:
    # The account had no codes: its first sheet waits (the password was confirmed just now).
    first_sheet: SheetReady | None
    # Turning the app on ends every other session of the account.
    sessions_ended: int = 0


@dataclass(frozen=True)
class SessionsEnded:
    count: int


@dataclass(frozen=True)
class EmailChanged:
    address: str


@dataclass(frozen=True)
class Unlocked:
    """A mailed unlock link was followed: this browser is now a trusted device of the account."""

    username: str
    device_token: str | None


@dataclass(frozen=True)
class Done:
    """The action happened; there is nothing more to say than that."""
