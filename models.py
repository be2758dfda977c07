"""SQLAlchemy models: accounts, server-side sessions, backup codes, failure counters, events."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clock import now
from extensions import db

if TYPE_CHECKING:
    # db.Model is made at run time from this base (with Flask-SQLAlchemy's additions); type
    # checkers see the base itself.
    from extensions import Base as Model
else:
    Model = db.Model


class User(UserMixin, Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(30), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    # Mail goes only to a verified address (a link sent to it was followed).
    email_verified_at: Mapped[datetime | None]
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    password_hash: Mapped[str] = mapped_column(String(60))
    # Authenticator app (TOTP): secrets are Fernet tokens; the pending one awaits its first code.
    totp_secret: Mapped[str | None] = mapped_column(String(200))
    totp_pending_secret: Mapped[str | None] = mapped_column(String(200))
    totp_enabled_at: Mapped[datetime | None]
    # The last accepted 30-second time step: a code is never accepted twice.
    totp_last_step: Mapped[int | None]
    # A backup code was used: every other session shows a notice until it dismisses it there, or
    # 7 days pass (security/code_notice.py).
    code_notice_event_id: Mapped[int | None]
    code_notice_session_id: Mapped[str | None] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(60), default="")
    # A picture in static/img/avatars/ (the demo account has one); others show their initial.
    avatar: Mapped[str | None] = mapped_column(String(60))
    bio: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=now)
    # A demo sandbox ("Try the demo", security/demo.py): deleted at this time at the latest (or
    # sooner when idle). NULL for every real account.
    sandbox_expires_at: Mapped[datetime | None] = mapped_column(index=True)
    # The sandbox's generated password, shown on its pages so the visitor can log back in, and
    # the password hash it was made with: shown only while the account still has that hash (a
    # password the visitor chose is never stored in the clear).
    sandbox_password: Mapped[str | None] = mapped_column(String(60))
    sandbox_password_hash: Mapped[str | None] = mapped_column(String(60))

    code_set: Mapped[BackupCodeSet | None] = relationship(
        back_populates="user",
        uselist=False,
        lazy="select",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    # The server-side session row this request was authenticated with (set by the user loader).
    current_session = None

    # The cookie's token for that row (the row itself stores only its SHA-256).
    session_token = None

    @property
    def is_sandbox(self) -> bool:
        return self.sandbox_expires_at is not None

    @property
    def shown_sandbox_password(self) -> str | None:
        """The generated password while it is still the account's password, else None."""
        if self.sandbox_password and self.sandbox_password_hash == self.password_hash:
            return self.sandbox_password
        return None

    def clear_code_notice(self) -> None:
        """Stop showing the "A backup code was used" notice everywhere (the account secured)."""
        self.code_notice_event_id = None
        self.code_notice_session_id = None

    def get_id(self) -> str:
        # Flask-Login stores the session token, not the user id: deleting the row logs out.
        if self.session_token is None:
            raise RuntimeError("User has no server-side session attached")
        return self.session_token


class UserSession(Model):
    """One row per signed-in browser; the cookie carries a random token whose hash is the id."""

    __tablename__ = "user_sessions"

    # SHA-256 (hex) of the random token in the cookie.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # What pages and forms use to name a session: the secret id never leaves the cookie.
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    last_seen_at: Mapped[datetime] = mapped_column(default=now)
    ip: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    # Set after a recovery with a backup code: nothing but "Create a new password" until done.
    must_change_password: Mapped[bool] = mapped_column(default=False)
    # The code-use notice this session dismissed: hidden here only, never in other sessions.
    notice_dismissed_event_id: Mapped[int | None]

    user: Mapped[User] = relationship(lazy="joined")


class PendingLogin(Model):
    """Between the password (or a first backup code) and the second factor; lives 5 minutes."""

    __tablename__ = "pending_logins"

    # SHA-256 (hex) of the random token kept in the Flask session.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # "login" after the password; "recovery" after a first, still unused, backup code.
    purpose: Mapped[str] = mapped_column(String(10))
    # For a recovery: the first code's digest, spent only when the second factor passes.
    first_code_digest: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(default=now)


class BackupCodeSet(Model):
    """The current set of ten codes of one account; replaced whole on regeneration."""

    __tablename__ = "backup_code_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    public_id: Mapped[str] = mapped_column(String(8))
    # bcrypt salt string ("$2b$10$" + 22 characters = 128 random bits) shared by the set's codes.
    salt: Mapped[str] = mapped_column(String(29))
    created_at: Mapped[datetime] = mapped_column(default=now)

    user: Mapped[User] = relationship(back_populates="code_set")
    codes: Mapped[list[BackupCode]] = relationship(
        back_populates="code_set",
        order_by="BackupCode.number",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class CodeSheet(Model):
    """A new set's sheet while its owner saves it: the codes encrypted at rest (Fernet, the
    app-secret key), bound to the session that asked for them, for at most 30 minutes.

    Not in use (`in_use` false): the account's old set keeps working until a code typed back
    from this sheet makes these codes the account's set. In use: a first set (nothing to protect),
    or the old set was voided early; the sheet waits only for "I saved my codes".
    """

    __tablename__ = "code_sheets"

    id: Mapped[int] = mapped_column(primary_key=True)
    # One sheet at a time per account: asking again replaces it.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    # Deleting the session (log-out, expiry, "log out of all other sessions") wipes the sheet.
    session_id: Mapped[str] = mapped_column(
        ForeignKey("user_sessions.id", ondelete="CASCADE"), index=True
    )
    public_id: Mapped[str] = mapped_column(String(8))
    salt: Mapped[str] = mapped_column(String(29))
    # The ten bcrypt digests, in order, separated by spaces: what the set will store.
    digests: Mapped[str] = mapped_column(Text)
    # Fernet token of the ten codes (separated by spaces): shown again on reload and downloaded.
    codes_token: Mapped[str] = mapped_column(Text)
    in_use: Mapped[bool] = mapped_column(default=False)
    # Which code ("Type code #k from your new sheet") proves the sheet was saved.
    check_number: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=now)


class BackupCode(Model):
    __tablename__ = "backup_codes"
    __table_args__ = (
        UniqueConstraint("set_id", "number"),
        Index("ix_backup_codes_lookup", "user_id", "set_id", "digest"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("backup_code_sets.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    number: Mapped[int]
    digest: Mapped[str] = mapped_column(String(60))
    used_at: Mapped[datetime | None]

    code_set: Mapped[BackupCodeSet] = relationship(back_populates="codes")


class AttemptCounter(Model):
    """Consecutive failed checks, by kind, of one trusted device of an account (`device:`), of
    every other client of the account (`user:`), or of a name that matches no account (`name:`)."""

    __tablename__ = "attempt_counters"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    # Every check of any kind answered with a wrong secret since the last success: what the owner
    # is told of then. A check counted in advance that never got its answer (a killed request, a
    # database error) is not one: it counts only in the kind's own count, for the wait.
    failures: Mapped[int] = mapped_column(default=0)
    # Failed passwords only: the log-in form's own back-off, so code guessing cannot lock it.
    password_failures: Mapped[int] = mapped_column(default=0)
    # Failed codes only: code entry closes at the cap of these, password guessing cannot close it.
    code_failures: Mapped[int] = mapped_column(default=0)
    # Failed codes at the two-factor step (after a right password or first code): its own delay
    # and cap, so guessing on "Forgot password?" never closes the owner's two-factor log-in.
    second_factor_failures: Mapped[int] = mapped_column(default=0, server_default="0")
    # Failed codes at the two-factor step of a recovery (after a right first code): apart from
    # the owner's password + app log-in, so guesses there never close it.
    recovery_failures: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None]
    next_password_attempt_at: Mapped[datetime | None]
    next_second_factor_attempt_at: Mapped[datetime | None]
    next_recovery_attempt_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=0)
    # When the first of `failures` was answered (None when there are none): the owner's own
    # mistakes are told apart from others' only among failures since then (security/guard.py).
    failures_since: Mapped[datetime | None]


class TrustedDevice(Model):
    """A browser that has signed in to the account (OWASP's device cookie): its attempts count on
    a counter of its own, so strangers' guessing never slows or closes it."""

    __tablename__ = "trusted_devices"

    # SHA-256 (hex) of the random token in the browser's signed device cookie.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    last_used_at: Mapped[datetime] = mapped_column(default=now)


class EndedSession(Model):
    """Why a session was ended by something done elsewhere (a new password, a backup code used),
    kept under the ended session's id (the SHA-256 of its token) so that the browser whose cookie
    still carries the token can be told why it was logged out. Pruned with expired sessions."""

    __tablename__ = "ended_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    ended_at: Mapped[datetime] = mapped_column(default=now, index=True)


class UsedLink(Model):
    """A mailed single-use link that was followed (SHA-256 of its token): it never works again."""

    __tablename__ = "used_links"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(default=now)


class SecurityEvent(Model):
    __tablename__ = "security_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=now)
    ip: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
