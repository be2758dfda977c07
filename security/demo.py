"""Demo sandboxes: "Try the demo" makes a personal, throwaway account per visitor.

A sandbox is an ordinary account with `users.sandbox_expires_at` set: every journey works in it
exactly as in a real account, and nothing done in one touches another. It has a generated,
readable username (`demo-amber-fox-42`: sign-up never accepts a hyphen, so no real
account can hold one) and password, the demo
profile, and never an email address, so it never receives mail. It is deleted with everything it
owns `ttl` after it was made, or once `idle` passes without a session seen, an event recorded
(a log-in, a log-out, a code used) or anything else, whichever comes first.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from clock import now
from models import AttemptCounter, SecurityEvent, TrustedDevice, User, UserSession
from security import events
from security.accounts import DuplicateAccount, add_account
from security.attempts import account_key, unknown_name_key
from security.backup_codes import CODES_PER_SET, code_status
from security.context import Context
from security.outcomes import Reason, Refused, Started
from security.passwords import hash_password
from security.rows import rows_changed
from security.signing_in import start_browser_session
from security.trusted_devices import device_key

# Every sandbox's username starts with this; sign-up's usernames have no hyphen
# (security/accounts.py: USERNAME_PATTERN), so no real account can be named like a sandbox.
SANDBOX_PREFIX = "demo-"
SANDBOX_CREATED = "demo sandbox"
DEMO_FULL = (
    "The demo is full right now: too many people are trying it at once. Try again in a few minutes."
)
# Three generated names in a row were taken (one in about 100,000 at a full demo).
NAMES_TAKEN = "No free demo account name was found just now. Try again in a moment."

# The picture, name and bio of the shared demo account (`flask demo`) and of every sandbox.
DEMO_PROFILE: dict[str, str] = {
    "display_name": "Dana Demo",
    "bio": (
        "Trying out backup codes before my real accounts. Film cameras, strong coffee, long "
        "walks on the ridge.\nLocked out once in 2024: never again."
    ),
    "email": "demo@example.com",
    "avatar": "demo.svg",
}

_ADJECTIVES = (
    "amber", "azure", "bold", "brave", "brisk", "calm", "clever", "coral", "crisp", "dusky",
    "eager", "early", "fair", "fancy", "gentle", "golden", "grand", "happy", "hazel", "honest",
    "ivory", "jolly", "keen", "kind", "lively", "lucky", "lunar", "mellow", "merry", "misty",
    "noble", "olive", "polar", "proud", "quick", "quiet", "rapid", "rosy", "royal", "rustic",
    "sandy", "shiny", "silver", "smart", "snowy", "sober", "solar", "steady", "sunny", "swift",
    "tidy", "urban", "vivid", "warm", "wise", "witty", "young", "zesty",
)  # fmt: skip
_ANIMALS = (
    "badger", "bear", "beaver", "bison", "crane", "crow", "deer", "dove", "eagle", "egret",
    "falcon", "ferret", "finch", "fox", "gecko", "goose", "hare", "hawk", "heron", "ibis",
    "jay", "koala", "lark", "lemur", "lion", "lynx", "marten", "mole", "moose", "newt",
    "otter", "owl", "panda", "puffin", "quail", "raven", "robin", "seal", "shrew", "sloth",
    "stoat", "swan", "tapir", "tiger", "toad", "trout", "viper", "vole", "walrus", "whale",
    "wolf", "wombat", "wren", "yak", "zebra",
)  # fmt: skip
_WORDS = (
    "anchor", "apple", "arrow", "basket", "beacon", "bridge", "candle", "canyon", "castle",
    "cedar", "cloud", "comet", "copper", "cotton", "desert", "engine", "feather", "forest",
    "garden", "glacier", "harbor", "helmet", "island", "jacket", "kettle", "ladder", "lantern",
    "marble", "meadow", "mirror", "motor", "orchard", "paddle", "pepper", "pillow", "planet",
    "pocket", "pumpkin", "quartz", "rocket", "saddle", "signal", "spiral", "summit", "teapot",
    "thunder", "timber", "tunnel", "velvet", "violin", "wagon", "window", "winter", "yogurt",
)  # fmt: skip


@dataclass(frozen=True)
class SandboxRules:
    """How long sandboxes live and how many may exist at once (from the app's settings)."""

    ttl_seconds: int
    idle_seconds: int
    max_accounts: int


def rules_from_config(config) -> SandboxRules:
    return SandboxRules(
        ttl_seconds=int(config["DEMO_TTL_SECONDS"]),
        idle_seconds=int(config["DEMO_IDLE_SECONDS"]),
        max_accounts=int(config["DEMO_MAX_ACCOUNTS"]),
    )


@dataclass(frozen=True)
class SandboxStarted:
    """A new sandbox, signed in on this browser: the cookie gets `session.token`."""

    session: Started
    username: str
    password: str


def sandbox_username() -> str:
    """`demo-amber-fox-42`: readable, and one of about 300,000."""
    adjective, animal = secrets.choice(_ADJECTIVES), secrets.choice(_ANIMALS)
    return f"{SANDBOX_PREFIX}{adjective}-{animal}-{secrets.randbelow(90) + 10}"


def sandbox_password() -> str:
    """`copper-lantern-meadow-58`: three words and two digits, easy to read off the banner."""
    words = [secrets.choice(_WORDS) for _ in range(3)]
    return "-".join([*words, str(secrets.randbelow(90) + 10)])


def _expired(rules: SandboxRules, current: datetime):
    """The condition a sandbox account meets once it is over, in SQL: past its deadline, or
    made more than `idle` ago with no session seen and no event recorded since."""
    idle_since = current - timedelta(seconds=rules.idle_seconds)
    seen = exists().where(UserSession.user_id == User.id, UserSession.last_seen_at >= idle_since)
    acted = exists().where(SecurityEvent.user_id == User.id, SecurityEvent.created_at >= idle_since)
    return User.sandbox_expires_at.is_not(None) & (
        (User.sandbox_expires_at <= current) | ((User.created_at < idle_since) & ~seen & ~acted)
    )


def _delete_accounts(db_session: Session, users: list[tuple[int, str]]) -> int:
    """Delete these accounts with everything they own: the rows that name them (sessions,
    codes, sheets, events, devices, half-finished log-ins) go with them (ON DELETE CASCADE);
    their failure counters, keyed by id, by name and by trusted device, are deleted here. Not
    committed."""
    if not users:
        return 0
    ids = [user_id for user_id, _ in users]
    keys = [account_key(user_id) for user_id in ids]
    keys += [unknown_name_key(username) for _, username in users]
    devices = db_session.scalars(select(TrustedDevice.id).where(TrustedDevice.user_id.in_(ids)))
    keys += [device_key(digest) for digest in devices]
    db_session.execute(delete(AttemptCounter).where(AttemptCounter.key.in_(keys)))
    return rows_changed(db_session.execute(delete(User).where(User.id.in_(ids))))


def prune_sandboxes(db_session: Session, rules: SandboxRules) -> int:
    """Delete every sandbox that is over (`_expired`); returns how many went. Not committed."""
    over = db_session.execute(select(User.id, User.username).where(_expired(rules, now()))).all()
    return _delete_accounts(db_session, [(row.id, row.username) for row in over])


def live_sandboxes(db_session: Session) -> int:
    return (
        db_session.scalar(
            select(func.count()).select_from(User).where(User.sandbox_expires_at.is_not(None))
        )
        or 0
    )


def sandbox_of_browser(db_session: Session, named: tuple[int, str] | None) -> User | None:
    """The sandbox a browser's demo cookie names by id and username, if it is still one (the
    name too: SQLite may give a deleted account's id to the next account made)."""
    if named is None:
        return None
    user_id, username = named
    return db_session.scalar(
        select(User).where(
            User.id == user_id, User.username == username, User.sandbox_expires_at.is_not(None)
        )
    )


def start_sandbox(
    ctx: Context,
    rules: SandboxRules,
    profile: dict[str, str],
    previous: tuple[int, str] | None = None,
) -> SandboxStarted | Refused:
    """A new sandbox for this browser, signed in: one transaction. The browser's previous
    sandbox (`previous`: its id and name, from its demo cookie) is deleted, so "Start over" does not
    add to the count. At `max_accounts` sandboxes those that are over are pruned first; if it
    is still full, nothing changes and the visitor is told to try again later.

    Concurrent requests each count before they add, so the cap may be passed by at most the
    number of sandboxes being made at that moment."""
    password = sandbox_password()
    password_hash = hash_password(ctx.keys, password)
    for _ in range(3):
        old = sandbox_of_browser(ctx.db, previous)
        if old is not None:
            _delete_accounts(ctx.db, [(old.id, old.username)])
        if live_sandboxes(ctx.db) >= rules.max_accounts:
            prune_sandboxes(ctx.db, rules)
            if live_sandboxes(ctx.db) >= rules.max_accounts:
                ctx.db.rollback()
                return Refused(Reason.FULL, DEMO_FULL)
        username = sandbox_username()
        try:
            user = add_account(ctx.db, ctx.keys, username, password, password_hash=password_hash)
        except DuplicateAccount:
            continue  # the generated name was taken (rolled back): draw another
        current = now()
        user.display_name = profile["display_name"]
        user.bio = profile["bio"]
        user.avatar = profile["avatar"]
        user.sandbox_expires_at = current + timedelta(seconds=rules.ttl_seconds)
        user.sandbox_password = password
        user.sandbox_password_hash = password_hash
        events.record_event(ctx, user.id, events.SIGNED_UP, SANDBOX_CREATED)
        started = start_browser_session(ctx, user)
        events.record_event(ctx, user.id, events.LOGGED_IN)
        ctx.db.commit()
        return SandboxStarted(session=started, username=username, password=password)
    return Refused(Reason.TAKEN, NAMES_TAKEN)


def sandbox_is_over(user: User) -> bool:
    """Past its deadline (an idle one is found by `prune_sandboxes`)."""
    return user.sandbox_expires_at is not None and user.sandbox_expires_at <= now()


def end_sandbox_if_over(ctx: Context, user: User) -> bool:
    """Delete a sandbox whose deadline has passed (the request that finds it ends there);
    False, and nothing changed, for a real account or a sandbox still on."""
    if not sandbox_is_over(user):
        return False
    _delete_accounts(ctx.db, [(user.id, user.username)])
    ctx.db.commit()
    return True


@dataclass(frozen=True)
class SandboxLogin:
    """What a sandbox's pages show: how to log back in, and until when."""

    username: str
    # The generated password while it is still the account's; None once the visitor chose one.
    password: str | None
    expires_at: datetime
    # The lowest-numbered unused backup code of the current sheet (the tour asks for it).
    next_code_number: int | None


def sandbox_login(db_session: Session, user: User) -> SandboxLogin | None:
    """The login a sandbox's banner shows, or None for a real account (or one gone)."""
    if user.sandbox_expires_at is None:
        return None
    status = code_status(db_session, user.id)
    unused = []
    if status is not None:
        unused = [n for n in range(1, CODES_PER_SET + 1) if n not in status.used_numbers]
    return SandboxLogin(
        username=user.username,
        password=user.shown_sandbox_password,
        expires_at=user.sandbox_expires_at,
        next_code_number=unused[0] if unused else None,
    )
