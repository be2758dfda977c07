"""The ways in and out, one use case each: sign up, log in, the two-factor step, recovery with a
backup code, log out.

Each takes a Context and plain values, returns one outcome from `security/outcomes.py`, and owns
its transaction: it commits once, or rolls back and changes nothing but the counted attempt
(`security/guard.py`).
"""

from __future__ import annotations

from sqlalchemy import delete, update

from clock import now
from models import AttemptCounter, PendingLogin, SecurityEvent, User, UserSession
from security import ended_sessions, events
from security.accounts import (
    NO_ACCOUNT,
    DuplicateAccount,
    Holders,
    add_account,
    find_user,
    holders_of,
)
from security.attempts import (
    CODE,
    PASSWORD,
    RECOVERY_SECOND_FACTOR,
    SECOND_FACTOR,
    failures_of,
    reserve_attempt,
    unknown_name_key,
)
from security.backup_codes import (
    Redemption,
    derive_code,
    find_unused_code,
    redeem_backup_code,
    use_code_digest,
)
from security.code_notice import show_elsewhere
from security.context import Context
from security.ended_sessions import note_sessions_ending
from security.guard import Attempt, begin_attempt
from security.notices import CODE_USED, NEW_DEVICE, SIGNUP_ATTEMPT, tell_owner
from security.outcomes import (
    CodesUsed,
    Done,
    NeedsSecondFactor,
    Reason,
    Recovered,
    Refused,
    SignedIn,
    Started,
)
from security.passwords import verify_password
from security.sessions import (
    end_other_sessions,
    end_pending_login,
    end_session,
    load_pending_login,
    start_pending_login,
    start_session,
    token_digest,
)
from security.totp import accept_code
from security.trusted_devices import has_devices, trust_this_device, trusted_device
from security.two_factor import LOGIN, RECOVERY

LOGIN_FAILED = "The username or password is incorrect. Check them and try again."
APP_CODE_FAILED = "That code did not work. Check the time on your phone and enter the newest code."
CODE_FAILED = (
    "That code did not work. Check the account name and the code and try again. "
    "Each code works only once."
)
# Usernames are public names (profiles live at /<username>/), so a taken one is said; a taken
# email or phone never is (sign_up).
USERNAME_TAKEN = "This username is taken. Try another."
SIGN_UP_AGAIN = "Something changed while you signed up. Try again."
FIRST_CODE_GONE = "Your first backup code was used meanwhile. Start again."
PENDING_GONE = "That took too long, or it started elsewhere. Log in again."


def end_browser_session(ctx: Context, user: User) -> None:
    """End the server-side session this browser's cookie names, whatever account it is, in the
    use case's transaction: the cookie is about to forget it, and a copy of the old cookie must
    not outlive it. Another account's session gets a "logged out" event."""
    if ctx.client.session_token is None:
        return
    ended = ctx.db.execute(
        delete(UserSession)
        .where(UserSession.id == token_digest(ctx.client.session_token))
        .returning(UserSession.user_id)
    ).scalar()
    if ended is not None and ended != user.id:
        events.record_event(
            ctx, ended, events.LOGGED_OUT, "another account signed in on that browser"
        )


def start_browser_session(ctx: Context, user: User, must_change_password: bool = False) -> Started:
    """A new server-side session for this browser, which is now a trusted device of the
    account (a new device token when it had none for it). The browser's previous session ends,
    whatever account it was."""
    end_browser_session(ctx, user)
    row, token = start_session(
        ctx.db, user.id, ctx.client.ip, ctx.client.user_agent, must_change_password
    )
    had_devices = has_devices(ctx.db, user.id)
    device_token = trust_this_device(ctx.db, user.id, ctx.client.device_tokens)
    return Started(
        user=user,
        token=token,
        row=row,
        device_token=device_token,
        new_device=device_token is not None and had_devices,
    )


def _told(ctx: Context, started: Started, used: CodesUsed | None = None) -> None:
    """After the commit: mail the owner about a new device and any backup code used."""
    if started.new_device:
        tell_owner(ctx, started.user, NEW_DEVICE)
    if used is not None:
        numbers = " and ".join(f"#{n}" for n in used.numbers)
        tell_owner(ctx, started.user, CODE_USED, f"code {numbers}, {used.codes_left} left")


def register_account(
    ctx: Context,
    username: str,
    password: str,
    email: str | None = None,
    phone: str | None = None,
    display_name: str = "",
) -> User | Refused:
    """A new account, not signed in (the `create-user` and `demo` commands)."""
    try:
        user = add_account(ctx.db, ctx.keys, username, password, email, phone, display_name)
    except DuplicateAccount as error:
        return Refused(Reason.TAKEN, str(error))
    events.record_event(ctx, user.id, events.SIGNED_UP)
    ctx.db.commit()
    return user


def sign_up(
    ctx: Context, username: str, password: str, email: str | None, phone: str | None
) -> SignedIn | Refused:
    """The account, its "signed up" and "logged in" events and its first session: one
    transaction. All three names are normalised.

    A taken username is said. A taken email or phone is not: the account is made without it
    (the sign-up answers exactly as with a fresh one), and the owner of the address is told by
    mail, after the commit, when their address is verified (`tell_owner`'s rule)."""
    for _ in range(2):
        holders = holders_of(ctx.db, username, email, phone)
        if holders.username_taken:
            return Refused(Reason.TAKEN, USERNAME_TAKEN)
        try:
            user = add_account(
                ctx.db,
                ctx.keys,
                username,
                password,
                None if holders.email_owner else email,
                None if holders.phone_owner else phone,
            )
        except DuplicateAccount:
            # Another sign-up took one of the names meanwhile; it is committed now, so the
            # second look sees it.
            continue
        events.record_event(ctx, user.id, events.SIGNED_UP)
        started = start_browser_session(ctx, user)
        events.record_event(ctx, user.id, events.LOGGED_IN)
        ctx.db.commit()
        _tell_holders(ctx, holders)
        return SignedIn(session=started)
    return Refused(Reason.TAKEN, SIGN_UP_AGAIN)


def _tell_holders(ctx: Context, holders: Holders) -> None:
    """After the commit: each owner of an address the sign-up asked for hears of it once."""
    told: dict[int, tuple[User, list[str]]] = {}
    for holder, name in (
        (holders.email_owner, "email address"),
        (holders.phone_owner, "phone number"),
    ):
        if holder is not None:
            told.setdefault(holder.id, (holder, []))[1].append(name)
    for owner, names in told.values():
        what = " and ".join(names)
        sent = tell_owner(ctx, owner, SIGNUP_ATTEMPT, what)
        events.log_event(
            "sign_up_with_taken_address",
            owner.id,
            "told" if sent else "not told",
            what,
            ctx.client.ip,
        )


def log_in(ctx: Context, identifier: str, password: str) -> SignedIn | NeedsSecondFactor | Refused:
    """Counter first, then exactly one bcrypt check whether or not the account exists."""
    user = find_user(ctx.db, identifier)
    attempt = begin_attempt(ctx, PASSWORD, "log-in", user, identifier, looks_wrong=LOGIN_FAILED)
    if isinstance(attempt, Refused):
        if attempt.reason == Reason.WRONG_SECRET:
            # Looks like a wrong password, so costs what one costs: no timing tells it apart.
            verify_password(ctx.keys, password, None)
        return attempt
    stored_hash = user.password_hash if user is not None else None
    if not verify_password(ctx.keys, password, stored_hash) or user is None:
        return attempt.fail(events.LOGIN_FAILED, LOGIN_FAILED)
    if user.totp_secret:
        # The password's own count starts again; the second factor's does not, so knowing the
        # password never resets the count between guesses of the app's code. What the owner is
        # told of (`failures`: answered wrong secrets) stays until the second factor passes.
        attempt.first_factor_passed()
        # The cookie keeps only the half-finished log-in from here on.
        end_browser_session(ctx, user)
        token = start_pending_login(ctx.db, user.id, LOGIN)
        ctx.db.commit()
        return NeedsSecondFactor(pending_token=token)
    failures_before = attempt.succeed_signing_in()
    started = start_browser_session(ctx, user)
    events.record_event(ctx, user.id, events.LOGGED_IN)
    ctx.db.commit()
    _told(ctx, started)
    return SignedIn(session=started, failures_before=failures_before)


def _codes_used(*redemptions: Redemption) -> CodesUsed:
    """The numbers in the order they were typed; the count left after the last one spent."""
    return CodesUsed(
        numbers=tuple(r.number for r in redemptions),
        codes_left=min(r.codes_left for r in redemptions),
    )


def _record_code_use(ctx: Context, user: User, redemption: Redemption) -> SecurityEvent:
    return events.record_code_use(ctx, user.id, redemption.number, redemption.codes_left)


def _recovered(
    ctx: Context, user: User, failures_before: int, spent: list[tuple[Redemption, SecurityEvent]]
) -> Recovered:
    """Every session of the account ends, a new one starts that must set a new password first."""
    note_sessions_ending(ctx.db, user.id, ended_sessions.CODE_USED)
    end_other_sessions(ctx.db, user.id, keep_session_id=None)
    started = start_browser_session(ctx, user, must_change_password=True)
    events.record_event(ctx, user.id, events.RECOVERED)
    show_elsewhere(ctx.db, user, spent[-1][1], started.row.id)
    ctx.db.commit()
    used = _codes_used(*(redemption for redemption, _ in spent))
    _told(ctx, started, used)
    return Recovered(session=started, failures_before=failures_before, codes_used=used)


def recover_with_backup_code(
    ctx: Context, identifier: str, code: str
) -> Recovered | NeedsSecondFactor | Refused:
    """Forgot password? with one backup code (already normalised) for the account named by
    `identifier`: one derivation, one conditional UPDATE."""
    user = find_user(ctx.db, identifier)
    if user is None and ctx.client.device_tokens:
        # A real account's counter is picked by looking the browser's devices up: the same.
        trusted_device(ctx.db, NO_ACCOUNT, ctx.client.device_tokens)
    attempt = begin_attempt(ctx, CODE, "backup code", user, identifier, looks_wrong=CODE_FAILED)
    if isinstance(attempt, Refused):
        if attempt.reason == Reason.WRONG_SECRET:
            # Looks like a wrong code, so costs what one costs: no timing tells it apart.
            derive_code(ctx.db, ctx.keys, None, code)
        return attempt
    if user is None:
        return _wrong_code_without_account(ctx, attempt, code)
    if user.totp_secret:
        # With an app on, one code is not enough: it is checked now and spent only when the
        # app's code, or a second backup code, passes too (same work as below).
        found = find_unused_code(ctx.db, ctx.keys, user.id, code, lock=True)
        if found is None:
            return attempt.fail(events.CODE_FAILED, CODE_FAILED)
        # The cookie keeps only the half-finished recovery from here on.
        end_browser_session(ctx, user)
        token = start_pending_login(ctx.db, user.id, RECOVERY, first_code_digest=found[0])
        ctx.db.commit()
        return NeedsSecondFactor(pending_token=token)
    redemption = redeem_backup_code(ctx.db, ctx.keys, user.id, code)
    if redemption is None:
        return attempt.fail(events.CODE_FAILED, CODE_FAILED)
    failures_before = attempt.succeed_signing_in()
    event = _record_code_use(ctx, user, redemption)
    return _recovered(ctx, user, failures_before, [(redemption, event)])


def _wrong_code_without_account(ctx: Context, attempt: Attempt, code: str) -> Refused:
    """A name without an account does the database work of a real account's wrong code, step
    for step, so that the answer takes as long (tests/test_session_handover.py counts the
    statements; bench/code_timing.py times them). Nothing it touches changes but counters of
    names without accounts, which `prune` forgets like the name's own.

    A real account's name (from a browser that is not its trusted device) reserves on two
    counters, the typed name's and the account's; here the second is a stand-in counter of the
    name (inserted on its first try, as an account's is). Where the real account re-reads its
    row once (after the reservation's commit), the set's salt, takes its lock and runs the
    conditional UPDATE, these run against
    `NO_ACCOUNT` and match nothing. Where it inserts its failure event and commits, the
    stand-in counter's row is written (values unchanged) and committed; then the account's
    "closed now?" check reads the stand-in counter.
    """
    # Its answer is not needed: it moves in step with the name's own counter, which has just
    # let this attempt through. No account's name holds a NUL, so it never counts for one.
    stand_in = unknown_name_key(f"\x00account of {attempt.key}")
    reserve_attempt(ctx.db, stand_in, CODE, ctx.limits)
    ctx.db.get(User, NO_ACCOUNT)  # the account re-read after that commit
    redeem_backup_code(ctx.db, ctx.keys, None, code)
    refused = attempt.fail(events.CODE_FAILED, CODE_FAILED)
    ctx.db.execute(
        update(AttemptCounter)
        .where(AttemptCounter.key == stand_in)
        .values(version=AttemptCounter.version)
    )
    ctx.db.commit()
    failures_of(ctx.db, stand_in, CODE)
    return refused


def pending_login(ctx: Context, token: str | None) -> PendingLogin | None:
    """The live half-finished log-in the cookie names (an expired one is deleted)."""
    return load_pending_login(ctx.db, token, ctx.pending_login_seconds)


def abandon_pending_login(ctx: Context, token: str) -> Done:
    """Leaving the two-factor step for any other page ends the half-finished log-in."""
    end_pending_login(ctx.db, token)
    ctx.db.commit()
    return Done()


def _second_factor_passed(
    ctx: Context,
    user: User,
    attempt: Attempt,
    pending: PendingLogin,
    pending_token: str,
    method: str,
    second: Redemption | None = None,
) -> SignedIn | Recovered | Refused:
    """The second factor passed: spend a recovery's first code, end the half-finished log-in,
    start the session; all in one transaction."""
    first = None
    if pending.purpose == RECOVERY:
        first = use_code_digest(ctx.db, user.id, pending.first_code_digest or "")
        if first is None:
            ctx.db.rollback()
            end_pending_login(ctx.db, pending_token)
            ctx.db.commit()
            return Refused(Reason.FIRST_CODE_GONE, FIRST_CODE_GONE)
    end_pending_login(ctx.db, pending_token)
    failures_before = attempt.succeed_signing_in()
    spent: list[tuple[Redemption, SecurityEvent]] = []
    if second is not None and first is not None:
        # The first one is spent after the second one, so its count of codes left is the final
        # one; the message names them in the order they were typed.
        first_event = _record_code_use(ctx, user, first)
        second = Redemption(number=second.number, codes_left=first.codes_left)
        spent = [(first, first_event), (second, _record_code_use(ctx, user, second))]
    else:
        spent = [(only, _record_code_use(ctx, user, only)) for only in (first, second) if only]
    if pending.purpose == RECOVERY:
        return _recovered(ctx, user, failures_before, spent)
    started = start_browser_session(ctx, user)
    events.record_event(ctx, user.id, events.LOGGED_IN, f"with {method}")
    if spent:
        show_elsewhere(ctx.db, user, spent[-1][1], started.row.id)
    ctx.db.commit()
    used = _codes_used(*(r for r, _ in spent)) if spent else None
    _told(ctx, started, used)
    return SignedIn(session=started, failures_before=failures_before, codes_used=used)


def _open_second_factor(
    ctx: Context, pending: PendingLogin, what: str
) -> tuple[User, Attempt] | Refused:
    """The pending log-in's account and an attempt at its second factor, or why not."""
    user = ctx.db.get(User, pending.user_id)
    if user is None:
        return Refused(Reason.GONE, PENDING_GONE)
    kind = RECOVERY_SECOND_FACTOR if pending.purpose == RECOVERY else SECOND_FACTOR
    attempt = begin_attempt(ctx, kind, what, user)
    if isinstance(attempt, Refused):
        return attempt
    return user, attempt


def finish_with_app(
    ctx: Context, pending: PendingLogin, pending_token: str, code: str
) -> SignedIn | Recovered | Refused:
    """The 6-digit app code (normalised) as the second factor."""
    opened = _open_second_factor(ctx, pending, "app code")
    if isinstance(opened, Refused):
        return opened
    user, attempt = opened
    if not accept_code(ctx.db, ctx.keys, user, code, now()):
        return attempt.fail(events.APP_CODE_FAILED, APP_CODE_FAILED)
    return _second_factor_passed(
        ctx, user, attempt, pending, pending_token, "the authentication app"
    )


def finish_with_backup_code(
    ctx: Context, pending: PendingLogin, pending_token: str, code: str
) -> SignedIn | Recovered | Refused:
    """A backup code (normalised) as the second factor: instead of the app after the password,
    or as the second code of a recovery."""
    opened = _open_second_factor(ctx, pending, "backup code")
    if isinstance(opened, Refused):
        return opened
    user, attempt = opened
    derived = derive_code(ctx.db, ctx.keys, user.id, code)
    same_as_first = derived is not None and derived[1] == pending.first_code_digest
    redemption = None
    if derived is not None and not same_as_first:
        redemption = use_code_digest(ctx.db, user.id, derived[1])
    if redemption is None:
        return attempt.fail(events.CODE_FAILED, CODE_FAILED)
    return _second_factor_passed(
        ctx, user, attempt, pending, pending_token, "a backup code", second=redemption
    )


def log_out(ctx: Context, user: User, row: UserSession, detail: str = "") -> Done:
    """End this browser's server-side session (a copy of its cookie dies with it)."""
    end_session(ctx.db, row.id)
    events.record_event(ctx, user.id, events.LOGGED_OUT, detail)
    ctx.db.commit()
    return Done()
