"""The "A backup code was used" notice is kept per session (security/code_notice.py)."""

from __future__ import annotations

from blueprints.context import app_context_of
from extensions import db
from models import User
from security import events
from security.code_notice import dismiss_here, notice_for, show_elsewhere
from security.sessions import start_session


def test_each_session_dismisses_its_own_and_it_lasts_seven_days(app, user, frozen_clock):
    with app.app_context():
        ctx = app_context_of(app)
        account = db.session.get(User, user)
        used_by, _ = start_session(db.session, user, "192.0.2.1", "intruder")
        owner, _ = start_session(db.session, user, "192.0.2.2", "laptop")
        phone, _ = start_session(db.session, user, "192.0.2.3", "phone")
        event = events.record_code_use(ctx, user, 3, 9)
        show_elsewhere(db.session, account, event, used_by.id)
        db.session.commit()
        assert notice_for(db.session, account, used_by) is None
        assert notice_for(db.session, account, owner) == event
        # The session that used the code has nothing to dismiss; dismissing elsewhere is local.
        assert not dismiss_here(db.session, account, used_by)
        assert dismiss_here(db.session, account, phone)
        db.session.commit()
        assert notice_for(db.session, account, phone) is None
        assert notice_for(db.session, account, owner) == event
        frozen_clock(days=7, seconds=-60)
        assert notice_for(db.session, account, owner) == event
        frozen_clock(days=7, seconds=60)
        assert notice_for(db.session, account, owner) is None
