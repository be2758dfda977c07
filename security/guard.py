"""One guarded check of a secret: reserved on the counter before any hashing, then a failure
(recorded, committed) or a success (the counter cleared in the use case's transaction)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy import inspect as sa_inspect

from clock import now
from models import SecurityEvent, User
from security import events
from security.accounts import lock_account, normalise_identifier
from security.attempts import (
    PASSWORD,
    Failures,
    Throttled,
    account_key,
    clear_failures,
    clear_failures_since,
    clear_password_failures,
    count_answered_failure,
    failures_of,
    reserve_attempt,
    take_reported_failures,
    unknown_name_key,
)
from security.context import Context
from security.notices import KIND_NAMES, WAY_IN_CLOSED, tell_owner
from security.outcomes import Reason, Refused
from security.passwords import verify_password
from security.trusted_devices import device_key, trusted_device


class Attempt:
    """An attempt that the counter let through; every use case that checks a secret opens one.

    The reservation is committed on its own before any hashing: that is what makes it count in
    advance, so a request that dies mid-check still counted, and concurrent guesses beyond the
    back-off are refused without hashing. What the owner is later told of ("There were 2 failed
    attempts") counts only the checks that were answered with a wrong secret (`fail`): a request
    killed or stopped by a database error mid-check counts for the wait, never as a failure.
    """

    def __init__(
        self, ctx: Context, user: User | None, key: str, kind: str, also: str | None = None
    ):
        self.ctx = ctx
        self.user = user
        # The account's id from its identity, which needs no reload: the reservation's commit
        # expired the row, and a failure has no other use for it.
        self.user_id = sa_inspect(user).identity[0] if user is not None else None
        self.key = key
        self.kind = kind
        # The typed name's counter, reserved too for an untrusted client of an account.
        self.also = also

    def fail(self, event_kind: str, message: str, reason: Reason = Reason.WRONG_SECRET) -> Refused:
        """Undo whatever the check wrote, count the answered failure (told to the owner at the
        next success), record the wrong secret, commit. An unknown name gets only a log line: it
        has no owner to show an event to.

        An unknown name's counter counts it too, at the same point, so that its answer does an
        account's database work (security/signing_in.py: _wrong_code_without_account); that
        count is committed with the stand-in counter there, or dropped with the request's
        transaction on the log-in form. Nobody is ever told of it."""
        self.ctx.db.rollback()
        count_answered_failure(self.ctx.db, self.key)
        if self.user_id is not None:
            events.write_event(self.ctx, self.user_id, event_kind, outcome="failure")
            self.ctx.db.commit()
            self._tell_if_closed()
        else:
            events.log_event(event_kind, None, "failure", "unknown account", self.ctx.client.ip)
        return Refused(reason, message)

    def _tell_if_closed(self) -> None:
        """This failure closed a way in for browsers the account has not signed in with: the
        owner hears of it once, with the way back."""
        if self.user is None or self.user_id is None or self.key != account_key(self.user_id):
            return
        if (
            failures_of(self.ctx.db, self.key, self.kind)
            == self.ctx.limits.max_consecutive_failures
        ):
            tell_owner(self.ctx, self.user, WAY_IN_CLOSED, KIND_NAMES.get(self.kind, self.kind))

    def succeed(self) -> int:
        """Clear the counter (not committed); returns how many answered failures came before
        (see the class) that were not this person's own mistakes of the last minutes
        (`others_failures`)."""
        cleared = self._clear()
        if self.user_id is None:
            return cleared.count
        return others_failures(self.ctx, self.user_id, cleared)

    def succeed_signing_in(self) -> int:
        """`succeed` for a log-in or a recovery: the failures to tell the owner of. On a trusted
        device that is also what every other client of the account got wrong (the account's
        counter, where strangers' failures count): told here, and counted from zero again,
        while that counter's wait and cap stay (strangers stay slowed)."""
        cleared = self._clear()
        if self.user_id is None:
            return cleared.count
        if self.key != account_key(self.user_id):
            cleared = cleared.plus(take_reported_failures(self.ctx.db, account_key(self.user_id)))
        return others_failures(self.ctx, self.user_id, cleared)

    def _clear(self) -> Failures:
        """The account's lock comes first, so every use case takes the account row before the
        counter row (security/accounts.py)."""
        if self.user is not None:
            lock_account(self.ctx.db, self.user.id)
        if self.also is not None:
            clear_failures(self.ctx.db, self.also)
        return clear_failures_since(self.ctx.db, self.key)

    def first_factor_passed(self) -> None:
        """A right password that still needs a second factor: the password's own delay and cap
        start again, the second factor's do not (not committed)."""
        for key in (self.key, self.also):
            if key is not None:
                clear_password_failures(self.ctx.db, key)


# A wrong secret typed in this browser this long before the right one is the person's own
# mistake, not an "attempt to get into your account" (docs/decisions.md, "What the notes say").
OWN_MISTAKE_MINUTES = 10
# The events `Attempt.fail` records: one per answered wrong secret.
FAILURE_EVENTS = (
    events.LOGIN_FAILED,
    events.CODE_FAILED,
    events.APP_CODE_FAILED,
    events.CONFIRM_FAILED,
    events.APP_SETUP_FAILED,
    events.CODE_CHECK_FAILED,
    events.SHEET_CHECK_FAILED,
)


def others_failures(ctx: Context, user_id: int, cleared: Failures) -> int:
    """Of the answered failures a success cleared, those that were not the person's own. A
    failure recorded from this client (the same address and browser: IP and user agent) in the
    last `OWN_MISTAKE_MINUTES`, and since the first cleared failure, is the person's own;
    everything else is reported."""
    if cleared.count == 0 or cleared.since is None:
        return cleared.count
    start = max(cleared.since, now() - timedelta(minutes=OWN_MISTAKE_MINUTES))
    own = ctx.db.scalar(
        select(func.count())
        .select_from(SecurityEvent)
        .where(
            SecurityEvent.user_id == user_id,
            SecurityEvent.kind.in_(FAILURE_EVENTS),
            SecurityEvent.created_at >= start,
            SecurityEvent.ip == ctx.client.ip,
            SecurityEvent.user_agent == ctx.client.user_agent,
        )
    )
    return max(cleared.count - int(own or 0), 0)


def counter_key(ctx: Context, user: User | None, identifier: str = "") -> str:
    """Whose failures these are: the trusted device's own counter when the browser's device
    cookie names the account, the account's counter of every other client otherwise, or the
    typed name's when it matches no account."""
    if user is None:
        return unknown_name_key(normalise_identifier(identifier))
    device = trusted_device(ctx.db, user.id, ctx.client.device_tokens)
    return device_key(device.id) if device is not None else account_key(user.id)


def begin_attempt(
    ctx: Context,
    kind: str,
    where: str,
    user: User | None,
    identifier: str = "",
    looks_wrong: str = "",
) -> Attempt | Refused:
    """Reserve one attempt of `kind` on the counter `counter_key` picks; a Refused if it says
    wait or closed.

    With a typed `identifier` (log-in, "Forgot password?"), an untrusted client of an account
    also reserves on the typed name's counter, the only one whose wait it is shown: when the
    account's counter refuses but the typed name's does not, the refusal reads `looks_wrong`,
    the page of a wrong secret. So trying another name of the same account after a wait shows
    exactly what an unknown name of the same shape shows, and aliases stay unlinked.
    """
    key = counter_key(ctx, user, identifier)
    also = None
    if identifier and user is not None and key == account_key(user.id):
        also = unknown_name_key(normalise_identifier(identifier))
        name_throttled = reserve_attempt(ctx.db, also, kind, ctx.limits)
        if name_throttled is not None:
            return _throttled(ctx, user, where, name_throttled, identifier)
    throttled = reserve_attempt(ctx.db, key, kind, ctx.limits)
    if throttled is None:
        return Attempt(ctx, user, key, kind, also)
    hidden_as = looks_wrong if also else None
    return _throttled(ctx, user, where, throttled, identifier, hidden_as)


def identifier_hash(identifier: str) -> str | None:
    """A typed name as log lines may show it: the first 16 hex digits of the SHA-256 that keys
    its counter (`unknown_name_key`), never the name itself; None when none was typed."""
    if not identifier.strip():
        return None
    return unknown_name_key(normalise_identifier(identifier)).partition(":")[2][:16]


def _throttled(
    ctx: Context,
    user: User | None,
    where: str,
    throttled: Throttled,
    identifier: str = "",
    hidden_as: str | None = None,
) -> Refused:
    """Log the refusal (the counter's kind, the typed name's hash, the client's address); answer
    with its wait, or (`hidden_as`) with a wrong secret's page."""
    events.log_event(
        events.THROTTLED,
        user.id if user else None,
        "refused",
        where,
        ctx.client.ip,
        counter_kind=throttled.kind,
        identifier_hash=identifier_hash(identifier),
        locked=throttled.locked,
        retry_after_seconds=throttled.retry_after_seconds,
    )
    if hidden_as is not None:
        return Refused(Reason.WRONG_SECRET, hidden_as or throttled.message)
    return Refused(Reason.CLOSED if throttled.locked else Reason.THROTTLED, throttled.message)


# bandit B105: a message, not a password.
WRONG_PASSWORD = "That password is not right. Nothing was changed."  # nosec B105


def password_attempt(ctx: Context, user: User, password: str, where: str) -> Attempt | Refused:
    """The password again ("Confirm it's you"), on this browser's password budget: an Attempt
    when it is right (the caller succeeds it with its change), else the refusal."""
    attempt = begin_attempt(ctx, PASSWORD, where, user)
    if isinstance(attempt, Refused):
        return attempt
    if not verify_password(ctx.keys, password, user.password_hash):
        return attempt.fail(events.CONFIRM_FAILED, WRONG_PASSWORD, Reason.WRONG_PASSWORD)
    return attempt
