"""How the site looks, measured in a real Chromium: both themes on every page, the navigation
(bottom bar on a phone, rail on a desktop) never covered, the sheet on one phone screen, and a
focus ring that can be seen and is not the tour's highlight.

Every number comes from the browser (getComputedStyle, getBoundingClientRect,
elementFromPoint); nothing here knows the stylesheet's colours.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e import steps
from tests.e2e.steps import expect

pytestmark = pytest.mark.e2e

SCHEMES = ("light", "dark")
# The pages of the README's and the help page's pictures, light and dark, phone and desktop.
DOCS_PAGES = ("login", "home", "profile-menu", "security", "backup-codes", "sheet")

# Colour arithmetic in the page: WCAG relative luminance and contrast, and the colour actually
# behind an element (its own and its ancestors' backgrounds, composited).
COLOUR_JS = """
const parse = (text) => {
  const m = /rgba?\\(([^)]+)\\)/.exec(text || "");
  if (!m) return null;
  const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
  return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
};
const over = (top, base) => ({
  r: top.r * top.a + base.r * (1 - top.a), g: top.g * top.a + base.g * (1 - top.a),
  b: top.b * top.a + base.b * (1 - top.a), a: 1,
});
const backdrop = (el) => {
  const layers = [];
  for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
    const c = parse(getComputedStyle(n).backgroundColor);
    if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
  }
  let base = {r: 255, g: 255, b: 255, a: 1};
  for (const c of layers.reverse()) base = over(c, base);
  return base;
};
const luminance = (c) => {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
};
const contrast = (a, b) => {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
};
const hex = (c) => "#" + [c.r, c.g, c.b]
  .map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
const label = (el) => {
  const text = (el.getAttribute("aria-label") || el.textContent || "").trim().replace(/\\s+/g, " ");
  const classes = typeof el.className === "string" ? el.className.trim().split(/\\s+/) : [];
  const tag = [el.tagName.toLowerCase(), ...classes.filter(Boolean)].join(".");
  return tag + " " + JSON.stringify(text.slice(0, 40));
};
"""

THEME_JS = (
    "() => {"
    + COLOUR_JS
    + """
  const visible = (el) => el.checkVisibility() && el.getBoundingClientRect().width > 1;
  const surfaces = [...document.querySelectorAll(".card, .top-bar, nav[aria-label=Main]")]
    .filter(visible).map((el) => ({what: label(el), luminance: luminance(backdrop(el))}));
  // Every piece of visible text against what is behind it: 4.5:1, or 3:1 when large.
  const faint = [];
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !visible(el) || el.closest("[hidden], noscript, .visually-hidden")) continue;
    const s = getComputedStyle(el);
    const colour = parse(s.color);
    const behind = backdrop(el);
    const ratio = contrast(over(colour, behind), behind);
    const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const pair = `${hex(colour)} on ${hex(behind)}`;
    if (ratio < needed) faint.push(`${label(el)}: ${ratio.toFixed(2)} < ${needed} (${pair})`);
  }
  return {
    page: luminance(backdrop(document.body)),
    text: luminance(parse(getComputedStyle(document.body).color)),
    surfaces, faint,
  };
}"""
)

# What covers the navigation at first view. The bar and the rail are found by their landmark.
# Phone: every point of the bar shows the bar (nothing drawn over it). Desktop: that, and no
# box of the page reaches into the rail's column.
COVER_JS = (
    "() => {"
    + COLOUR_JS
    + """
  const nav = document.querySelector("nav[aria-label=Main]");
  const box = nav.getBoundingClientRect();
  const problems = [];
  const xs = [], ys = [];
  for (let i = 1; i < 12; i++) xs.push(box.left + (box.width * i) / 12);
  for (let i = 1; i < 8; i++) ys.push(box.top + (box.height * i) / 8);
  for (const x of xs) for (const y of ys) {
    if (y >= innerHeight || x >= innerWidth) continue;
    const hit = document.elementFromPoint(x, y);
    const at = `${Math.round(x)},${Math.round(y)}`;
    if (hit && !nav.contains(hit)) problems.push(`${label(hit)} is drawn over the nav at ${at}`);
  }
  const desktop = box.height > box.width;
  if (desktop) {
    for (const el of document.body.querySelectorAll("*")) {
      if (nav.contains(el) || el.contains(nav) || !el.checkVisibility()) continue;
      const r = el.getBoundingClientRect();
      if (r.width < 1 || r.height < 1 || r.bottom <= 0 || r.top >= innerHeight) continue;
      const into = `${Math.round(r.left)} < ${Math.round(box.right)}`;
      const inside = r.left < box.right && r.right > box.left;
      if (inside) problems.push(`${label(el)} reaches into the rail (${into})`);
    }
  }
  return {desktop, problems: [...new Set(problems)]};
}"""
)

# At the end of a page, nothing is left under the bottom bar: the page ends above it.
UNDER_BAR_JS = (
    "() => {"
    + COLOUR_JS
    + """
  const nav = document.querySelector("nav[aria-label=Main]");
  const top = nav.getBoundingClientRect().top;
  const under = [];
  for (const el of document.querySelectorAll("main *")) {
    if (!el.checkVisibility()) continue;
    const r = el.getBoundingClientRect();
    const seen = r.width >= 1 && r.height >= 1 && r.top < innerHeight;
    if (seen && r.bottom > top + 0.5) under.push(label(el));
  }
  return under;
}"""
)

FOCUSED_JS = (
    "() => {"
    + COLOUR_JS
    + """
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const colour = parse(s.outlineColor);
  // An outline drawn outside the element lies on its parent's background; an inset one on its own.
  const behind = backdrop(parseFloat(s.outlineOffset) < 0 ? el : el.parentElement);
  return {
    what: label(el), id: el.id, style: s.outlineStyle, width: parseFloat(s.outlineWidth),
    colour: hex(colour), behind: hex(behind), ratio: contrast(over(colour, behind), behind),
  };
}"""
)


def look_at(page, name: str, viewport: str, artifacts, *, for_docs: bool = True) -> list[str]:
    """Both themes of the page in view: dark is dark, light is light, all text readable, the
    navigation uncovered. Saves a screenshot of each; returns what is wrong."""
    problems = []
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        theme = page.evaluate(THEME_JS)
        where = f"{viewport} {scheme} {name} ({page.url})"
        # Relative luminance: 0 is black, 1 white. Dark pages are near black with light text.
        measured = f"page {theme['page']:.3f}, text {theme['text']:.3f}"
        if scheme == "dark":
            if theme["page"] > 0.03 or theme["text"] < 0.5:
                problems.append(f"{where}: not dark: {measured}")
            wrong = [s for s in theme["surfaces"] if s["luminance"] > 0.05]
        else:
            if theme["page"] < 0.8 or theme["text"] > 0.05:
                problems.append(f"{where}: not light: {measured}")
            wrong = [s for s in theme["surfaces"] if s["luminance"] < 0.8]
        problems += [f"{where}: {s['what']} has luminance {s['luminance']:.3f}" for s in wrong]
        problems += [f"{where}: faint text {line}" for line in theme["faint"]]
        page.screenshot(path=artifacts / f"{name}-{scheme}.png")
        if for_docs and steps.UPDATE_DOCS and name in DOCS_PAGES:
            steps.DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=steps.DOCS_SCREENSHOTS / f"look-{name}-{viewport}-{scheme}.png")
    page.emulate_media(color_scheme="light")
    if page.locator("nav[aria-label=Main]").count():
        covered = page.evaluate(COVER_JS)
        problems += [f"{viewport} {name}: {line}" for line in covered["problems"]]
        if not covered["desktop"]:
            page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
            under = page.evaluate(UNDER_BAR_JS)
            problems += [f"{viewport} {name}: left under the bottom bar: {what}" for what in under]
            page.evaluate("window.scrollTo(0, 0)")
    return problems


def test_every_page_light_and_dark_with_the_navigation_uncovered(browser_page, viewport, artifacts):
    """Welcome to help, logged out and in: each page in both themes, and the bar or rail."""
    page, username = browser_page, steps.new_username("looker")
    problems: list[str] = []

    def look(name: str, **options) -> None:
        page.wait_for_load_state()
        problems.extend(look_at(page, name, viewport, artifacts, **options))

    # Pages before one is in, each reached by its address (this test looks, it does not walk).
    for name, path in (
        ("welcome", "/"),
        ("login", "/accounts/login/"),
        ("signup", "/accounts/signup/"),
        ("help-logged-out", "/help/backup-codes/"),
        ("tour-logged-out", "/tour/"),
    ):
        page.goto(path)
        look(name)

    steps.sign_up(page, username)
    look("home-no-codes")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Profile").click()
    expect(page.get_by_role("heading", name=username, exact=True)).to_be_visible()
    look("profile")
    page.get_by_role("button", name="Options").click()
    expect(page.get_by_role("link", name="Settings")).to_be_visible()
    look("profile-menu")
    for name, path in (
        ("settings", "/settings/"),
        ("security", "/settings/security/"),
        ("two-factor", "/settings/security/two-factor/"),
        ("backup-codes-none", "/settings/security/two-factor/backup-codes/"),
    ):
        page.goto(path)
        look(name)

    page.get_by_role("link", name="Get Backup Codes").click()
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    look("confirm")
    page.get_by_label("Password", exact=True).fill(steps.PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    steps.expect_sheet(page)
    codes = steps.codes_on_sheet(page)
    look("sheet")
    number = steps.open_save_page(page)
    look("save")
    steps.type_code_from_sheet(page, codes[number - 1])
    steps.title_is(page, "Backup Codes")
    look("backup-codes")
    page.goto("/")
    look("home")

    page.goto("/settings/security/two-factor/app/")
    look("app")
    page.get_by_role("button", name="Set up authentication app").click()
    expect(page.get_by_role("img", name="QR code for your authentication app")).to_be_visible()
    look("app-setup")
    for name, path in (
        ("sessions", "/settings/security/sessions/"),
        ("events", "/settings/security/events/"),
        ("email", "/settings/security/email/"),
        ("password", "/settings/security/password/"),
        ("help", "/help/backup-codes/"),
        ("tour", "/tour/"),
    ):
        page.goto(path)
        look(name)

    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("viewport", ["phone"])
def test_the_sheet_fits_one_phone_screen(browser_page, viewport, artifacts):
    """390×844, as loaded: the account, the set, all ten codes and the buttons that save them,
    above the bottom bar, so one screenshot keeps the sheet."""
    page, username = browser_page, steps.new_username("screen")
    steps.sign_up(page, username)
    steps.get_backup_codes(page, username)
    facts = steps.sheet_facts(page)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=artifacts / "sheet-first-screen.png")
    screen = page.viewport_size
    assert screen == {"width": 390, "height": 844}, screen
    bar_top = page.get_by_role("navigation", name="Main").bounding_box()["y"]
    assert bar_top <= screen["height"]

    sheet = page.get_by_role("article")
    codes = sheet.locator("li").filter(has_text=steps.CODE_ITEM)
    expect(codes).to_have_count(10)
    boxes = {
        "account": sheet.get_by_role("definition").filter(has_text=facts.username).first,
        "set id": sheet.get_by_role("definition").filter(has_text=re.compile(f"^{facts.set_id}$")),
        **{f"code #{n + 1}": codes.nth(n) for n in range(10)},
        "Download": page.get_by_role("button", name="Download"),
        "Print": page.get_by_role("button", name="Print"),
        "Copy": page.get_by_role("button", name="Copy"),
        "I saved my codes": page.get_by_role("link", name="I saved my codes"),
    }
    outside = []
    for what, locator in boxes.items():
        box = locator.bounding_box()
        assert box is not None, f"{what} is not on the page"
        if box["y"] < 0 or box["y"] + box["height"] > bar_top or box["x"] + box["width"] > 390:
            outside.append(f"{what}: {box}")
    assert not outside, "not on the first screen, above the bar:\n" + "\n".join(outside)

    # The save buttons come right after the codes: nothing between the last code and them.
    last_code = codes.nth(9).bounding_box()
    first_button = page.get_by_role("button", name="Print").bounding_box()
    assert 0 <= first_button["y"] - (last_code["y"] + last_code["height"]) <= 32

    # The tick boxes of the paper sheet are not on the screen, where they could not be ticked.
    ticks = sheet.locator(".tick")
    assert ticks.count() == 10
    assert all(not tick.is_visible() for tick in ticks.all())
    page.emulate_media(media="print")
    assert all(tick.is_visible() for tick in ticks.all())
    page.emulate_media(media="screen")


def tab_through(page, stops: int = 60) -> list[dict]:
    """Every stop of the Tab key round the page (it wraps past the end), each with its outline
    as computed."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    rings: list[dict] = []
    for _ in range(stops):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED_JS)
        if focused is None:  # past the end of the page, before it wraps to the top
            continue
        if rings and focused == rings[0]:
            break
        rings.append(focused)
    assert rings, "Tab reached nothing"
    return rings


def weak_rings(rings: list[dict], tour_colour: str | None, where: str) -> list[str]:
    problems = []
    for ring in rings:
        what = f"{where}: {ring['what']}"
        if ring["style"] == "none" or ring["width"] < 2:
            problems.append(f"{what}: no outline ({ring['style']} {ring['width']}px)")
        elif ring["ratio"] < 3:
            problems.append(
                f"{what}: ring {ring['colour']} on {ring['behind']} is {ring['ratio']:.2f}:1"
            )
        if tour_colour is not None and ring["colour"] == tour_colour:
            problems.append(f"{what}: the focus ring has the tour highlight's colour")
    return problems


def test_the_focus_ring_is_seen_in_both_themes_and_is_not_the_tour_highlight(
    browser_page, viewport
):
    page, username = browser_page, steps.new_username("focus")
    problems: list[str] = []
    page.goto("/accounts/login/")
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        problems += weak_rings(tab_through(page), None, f"{viewport} {scheme} log-in")

    # With the tour on, Home's profile picture is the thing to press next.
    steps.sign_up(page, username)
    page.goto("/tour/")
    page.get_by_role("button", name="Start: Get your backup codes").click()
    target = page.locator(".tour-target")
    expect(target).to_have_count(1)
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        page.evaluate("() => document.activeElement && document.activeElement.blur()")
        tour_colour = target.evaluate("el => getComputedStyle(el).outlineColor")
        red, green, blue = (int(v) for v in re.findall(r"\d+", tour_colour)[:3])
        tour_hex = f"#{red:02x}{green:02x}{blue:02x}"
        rings = tab_through(page)
        where = f"{viewport} {scheme} home on the tour"
        problems += weak_rings(rings, tour_hex, where)
        on_target = [ring for ring in rings if ring["id"] == "tour-profile-tab"]
        stops = [ring["what"] for ring in rings]
        assert on_target, f"{where}: Tab never reached the tour's target, only {stops}"
    assert not problems, "\n".join(problems)
