"""What every use case is given: the database session, the key ring, the limits and the client.

The web layer builds one `Context` per request (`blueprints/context.py`); commands and tests build
their own. Nothing here reads a request: the client's address and user agent arrive as data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from security.attempts import Limits
from security.keys import KeyRing
from security.notices import Outbox
from security.sessions import Timeouts

MAX_IP_LENGTH = 45
MAX_USER_AGENT_LENGTH = 300
# A session token is 43 characters (security/sessions.py); a longer one names no session.
MAX_SESSION_TOKEN_LENGTH = 64


@dataclass(frozen=True)
class Client:
    """Who is asking, as the web layer saw it: recorded on events and sessions."""

    ip: str = ""
    user_agent: str = ""
    # The browser's device-cookie tokens (signature already checked by the web layer).
    device_tokens: tuple[str, ...] = ()
    # The token of the server-side session the browser's cookie names, whatever account it is
    # (or was) signed in to: signing in again ends that session (security/signing_in.py).
    # Kept out of the repr: it is a live credential.
    session_token: str | None = field(default=None, repr=False)

    @classmethod
    def of(
        cls,
        ip: str | None,
        user_agent: str | None,
        device_tokens: tuple[str, ...] = (),
        session_token: str | None = None,
    ) -> Client:
        """Trimmed to the columns' sizes; NUL (which PostgreSQL cannot store) removed; a session
        token too long to be one dropped."""
        if not session_token or len(session_token) > MAX_SESSION_TOKEN_LENGTH:
            session_token = None
        return cls(
            ip=(ip or "")[:MAX_IP_LENGTH],
            user_agent=(user_agent or "").replace("\x00", "")[:MAX_USER_AGENT_LENGTH],
            device_tokens=device_tokens,
            session_token=session_token,
        )


@dataclass(frozen=True)
class Context:
    db: Session
    keys: KeyRing
    limits: Limits
    timeouts: Timeouts
    client: Client = Client()
    # How long the half-logged-in state between password and second factor lives.
    pending_login_seconds: int = 5 * 60
    # Mail to the owner, and the site's address for its links.
    outbox: Outbox = field(default_factory=Outbox)
