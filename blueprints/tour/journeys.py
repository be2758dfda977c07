"""The two guided journeys, step by step, and where a person is in one (kept in the session).

The server renders everything: each page names itself (`{% set tour_page = "..." %}`), each
element a step points at calls `tour_callout(target)` beside itself, and the base template asks
`tour_banner(page)` what to say at the top. No JavaScript is needed; app.js only scrolls the
callout into view and moves focus to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, render_template, session, url_for
from flask_login import current_user
from jinja2 import Undefined
from markupsafe import Markup, escape

from blueprints.browser import TOUR_KEY
from blueprints.demo.routes import current_sandbox_login


@dataclass(frozen=True)
class Step:
    page: str
    target: str
    text: str


@dataclass(frozen=True)
class Journey:
    key: str
    title: str
    steps: tuple[Step, ...]
    # Where the person lands after the last step: the tour says "done" there.
    finish_page: str
    needs_login: bool
    # Pages some people pass through between two steps (the two-factor step, for an account with
    # an authentication app): the banner explains them instead of calling them a wrong turn.
    side_pages: tuple[tuple[str, str], ...] = ()

    def first_index_on(self, page: str) -> int | None:
        return next((i for i, step in enumerate(self.steps) if step.page == page), None)


GET_CODES = Journey(
    key="get",
    title="Get your backup codes",
    steps=(
        Step(
            "home",
            "profile-tab",
            "Tap your profile picture at the bottom right (on a computer: Profile, in the menu "
            "on the left).",
        ),
        Step("profile", "options", "Tap the three lines at the top right."),
        Step("profile", "menu-settings", "Tap Settings."),
        Step("settings", "settings-security", "Tap Security."),
        Step("security", "security-two-factor", "Tap Two-Factor Authentication."),
        Step("two-factor", "two-factor-backup-codes", "Tap Backup Codes."),
        Step("backup-codes", "get-backup-codes", "Tap Get Backup Codes."),
        Step("confirm", "confirm-form", "Type your password and tap Confirm."),
        Step("sheet", "sheet-actions", "Save your codes: tap Print, Download or Copy."),
        Step("sheet", "sheet-saved", "Once they are saved somewhere safe, tap I saved my codes."),
        Step(
            "saved",
            "saved-form",
            "Type the code it asks for from your saved sheet and tap Use these codes.",
        ),
    ),
    finish_page="backup-codes",
    needs_login=True,
)

USE_A_CODE = Journey(
    key="use",
    title="Use a backup code",
    steps=(
        Step("login", "login-identifier", "Type your username."),
        Step("login", "forgot-password", "Tap Forgot password?"),
        Step("trouble", "use-backup-code", "Tap Use a backup code."),
        Step("backup-code", "backup-code-field", "Type one code from your sheet."),
        Step("backup-code", "backup-code-submit", "Tap Submit."),
        Step(
            "new-password",
            "new-password-form",
            "Choose a new password and tap Create a new password.",
        ),
    ),
    finish_page="home",
    needs_login=False,
    side_pages=(
        (
            "second-factor",
            "This account also has an authentication app: enter its 6-digit code, or use a "
            "second backup code if you do not have your phone. The tour goes on after that.",
        ),
    ),
)

JOURNEYS = {journey.key: journey for journey in (GET_CODES, USE_A_CODE)}


def start(key: str) -> Journey:
    journey = JOURNEYS[key]
    session[TOUR_KEY] = {"journey": key, "at": 0, "done": False}
    return journey


def stop() -> None:
    session.pop(TOUR_KEY, None)


def _state() -> tuple[Journey, dict] | None:
    state = session.get(TOUR_KEY)
    if not isinstance(state, dict) or state.get("journey") not in JOURNEYS:
        return None
    return JOURNEYS[state["journey"]], state


def page_url(page: str) -> str:
    """Where a step's page is, for "Back" and for getting back on track."""
    if page == "profile" and current_user.is_authenticated:
        return url_for("profile.profile", username=current_user.username)
    return url_for(
        {
            "home": "profile.home",
            "profile": "profile.home",
            "settings": "settings.index",
            "security": "settings.security",
            "two-factor": "settings.two_factor",
            "backup-codes": "settings.backup_codes",
            "confirm": "settings.confirm_for_codes",
            "sheet": "settings.new_codes",
            "saved": "settings.save_codes",
            "login": "auth.login",
            "trouble": "auth.trouble",
            "backup-code": "auth.use_backup_code",
            "new-password": "auth.new_password",
        }[page]
    )


@dataclass(frozen=True)
class Banner:
    """What the top of the page says about the tour."""

    journey: Journey
    kind: str  # "on-path", "side", "off-path", "log-in-first", "logged-in", "done"
    step_number: int = 0
    back_to: str = ""
    back_title: str = ""
    note: str = ""


PAGE_TITLES = {
    "home": "Home",
    "profile": "your profile",
    "settings": "Settings",
    "security": "Security",
    "two-factor": "Two-Factor Authentication",
    "backup-codes": "Backup Codes",
    "confirm": "Confirm it's you",
    "sheet": "Your backup codes",
    "saved": "Saved your codes?",
    "login": "Log in",
    "trouble": "Trouble logging in?",
    "backup-code": "Enter a backup code",
    "new-password": "Create a new password",
}


def banner(page: str) -> Banner | None:
    """Record where the person is on the journey and say so; called once per page render,
    before anything else on the page, which then shows only this page's steps."""
    g.tour_page = page
    found = _state()
    if found is None:
        return None
    journey, state = found
    if state.get("done"):
        return Banner(journey, "done")
    logged_in = current_user.is_authenticated
    if journey.needs_login and not logged_in:
        return Banner(journey, "log-in-first")
    last_page = journey.steps[-1].page
    if page == journey.finish_page and state["at"] >= journey.first_index_on(last_page):
        state["done"] = True
        session.modified = True
        return Banner(journey, "done")
    index = journey.first_index_on(page)
    if index is not None:
        state["at"] = index
        session.modified = True
        return Banner(journey, "on-path", step_number=index + 1)
    side_note = dict(journey.side_pages).get(page)
    if side_note is not None:
        return Banner(journey, "side", step_number=state["at"] + 1, note=side_note)
    if not journey.needs_login and logged_in and state["at"] < journey.first_index_on(last_page):
        return Banner(journey, "logged-in", step_number=state["at"] + 1)
    step_page = journey.steps[state["at"]].page
    return Banner(
        journey,
        "off-path",
        step_number=state["at"] + 1,
        back_to=page_url(step_page),
        back_title=PAGE_TITLES[step_page],
    )


@dataclass(frozen=True)
class Callout:
    number: int
    total: int
    text: str
    back_to: str | None


def callout(target: str) -> Callout | None:
    """The step that points at `target`, if the tour is on and not finished."""
    found = _state()
    if found is None or found[1].get("done"):
        return None
    journey, _ = found
    if journey.needs_login and not current_user.is_authenticated:
        return None
    for index, step in enumerate(journey.steps):
        if step.target == target and step.page == g.get("tour_page"):
            back_to = None
            previous = journey.first_index_on(step.page)
            if previous and previous > 0:
                back_to = page_url(journey.steps[previous - 1].page)
            text = step.text + _sandbox_hint(step.target)
            return Callout(index + 1, len(journey.steps), text, back_to)
    return None


def _sandbox_hint(target: str) -> str:
    """In a demo sandbox the tour knows what the visitor cannot: the generated password where
    journey 1 asks for it, the username and which code to type in journey 2."""
    login = current_sandbox_login()
    if login is None:
        return ""
    if target == "confirm-form" and login.password:
        return f" Your demo password is {login.password}."
    if target == "login-identifier":
        return f" Yours is {login.username}."
    if target == "backup-code-field" and login.next_code_number is not None:
        number = login.next_code_number
        return f" Type code #{number} from your sheet: the first one you have not used yet."
    return ""


def callout_html(target: str) -> Markup:
    """The callout beside the element a step points at (empty when no step does)."""
    return render_callout(callout(target), target)


def render_callout(step: Callout | None, target: str) -> Markup:
    """`step`'s callout for `target` (what `callout(target)` found), or nothing."""
    if step is None:
        return Markup("")
    # A rendered (auto-escaped) template, so already safe markup.
    html = render_template("tour/_callout.html", step=step, target=target)
    return Markup(html)  # noqa: S704  # nosec B704


def html_attributes(values: dict) -> Markup:
    """Keyword arguments as HTML attributes, in order: `aria_label` is written aria-label,
    true a bare attribute, and none, false or undefined leaves it out; values escaped."""
    written = []
    for key, value in values.items():
        if value is None or value is False or isinstance(value, Undefined):
            continue
        name = escape(key.replace("_", "-"))
        written.append(f" {name}" if value is True else f' {name}="{escape(value)}"')
    return Markup("".join(written))  # noqa: S704  # nosec B704: every part escaped above


# `target` takes an argument named `callout`: the function of that name under another.
_step_pointing_at = callout


def target(name, tag, /, classes="", callout="after", caller=None, **attributes) -> Markup:
    """An element a guided-tour step can point at: id "tour-<name>", outlined (class
    tour-target) while it is the thing to press next, with the step's callout beside it.

        {% call target("get-backup-codes", "a", "button", href=url) %}Get Backup Codes{% endcall %}

    renders <a class="button" id="tour-get-backup-codes" href="...">Get Backup Codes</a> and the
    callout after it. Other keyword arguments become attributes in the order given
    (`html_attributes`). `callout` is "after", "before", or false when the page puts
    {{ tour_callout(name) }} somewhere else itself. With no name it is just the element.
    A function rather than a macro: every page has several, and a Jinja macro call costs
    several times this."""
    step = _step_pointing_at(name) if name else None
    body = escape(caller()) if caller is not None else ""
    tag = escape(tag)
    written = escape(f"{classes} tour-target".strip() if step else classes)
    if name:
        written = f'{written}" id="tour-{escape(name)}'
    element = Markup(  # noqa: S704  # nosec B704: every part escaped
        f'<{tag} class="{written}"{html_attributes(attributes)}>{body}</{tag}>'
    )
    if not step or callout not in ("before", "after"):
        return element
    beside = render_callout(step, name)
    return beside + element if callout == "before" else element + beside
