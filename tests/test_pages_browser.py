"""The pages in a real headless browser: Debian's ``chromium-headless-shell`` driven by Playwright
(pointed at that executable: no browser is ever downloaded), against a real uvicorn server.

Every page must load with zero console errors and zero requests to any host but the server (so
they work with the network cut off: no CDN, no web font); the evidence form must submit an example
patient and show its cautions and trials; the EORTC 40983 page must show its forest plot.
Screenshots go to ``build/screenshots/`` for review.
"""

from __future__ import annotations

import shutil
from urllib.parse import urlsplit

import playwright.sync_api as playwright_api  # a test dependency (pyproject [test])
import pytest

from crlm_kg import paths


pytestmark = pytest.mark.slow

BROWSER = shutil.which("chromium-headless-shell") or shutil.which("chromium")
SHOTS = paths.BUILD_DIR / "screenshots"
EXAMPLE = paths.EXAMPLES_DIR / "patients" / "case-resectable-high-fong.json"

# path, and a selector that shows the page has rendered (for the pages a script builds)
PAGES = [
    ("/", "h1"),
    ("/studies?design=randomised-controlled-trial", "table.data tbody tr"),
    ("/studies/EORTC40983", "figure.forest svg"),
    ("/ontology/OverallSurvival", "h1"),
    ("/ontology/RasMutantPatient", "h1"),
    ("/terms?q=ecog", "ul.results li"),
    ("/endpoints/OverallSurvival?treatment=PerioperativeChemotherapy", "figure.forest svg"),
    ("/evidence/form", "form.patient"),
    ("/docs", ".swagger-ui .info .title"),
    ("/redoc", ".api-content h1"),
    ("/sparql", ".yasqe"),
    ("/ontology", "h1"),
]


THIRD_PARTY_VIEWERS = {"/docs", "/redoc", "/sparql", "/ontology"}
# every form control a person can reach has a label (its own <label>, an enclosing one, or aria-label)
UNLABELED_CONTROLS = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.name || e.id || e.outerHTML.slice(0, 80))"""


@pytest.fixture(scope="module")
def browser():
    if BROWSER is None:
        pytest.fail("no headless Chromium: apt-get install chromium-headless-shell (scripts/bootstrap.sh does)")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Watched:
    """A browser page that records console errors, uncaught exceptions and requests to any other host."""

    def __init__(self, browser, base: str, javascript: bool = True):
        self.host = urlsplit(base).netloc
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=javascript)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("request", self._request)

    def _request(self, request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != self.host:
            self.foreign.append(request.url)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser, live_server):
    w = Watched(browser, live_server)
    yield w
    w.close()


def test_every_page_loads_offline_without_console_errors(watched, live_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    for path, ready in PAGES:
        watched.errors.clear()
        response = watched.page.goto(live_server + path, wait_until="load")
        if response is None or response.status != 200:
            problems.append(f"{path}: HTTP {response.status if response else 'no response'}")
            continue
        try:
            watched.page.wait_for_selector(ready, timeout=15000)
        except playwright_api.TimeoutError:
            problems.append(f"{path}: {ready!r} never appeared; console: {watched.errors}")
            continue
        name = path.strip("/").split("?")[0].replace("/", "-") or "home"
        watched.page.screenshot(path=str(SHOTS / f"{name}.png"))
        problems.extend(f"{path}: {e}" for e in watched.errors)
        if path not in THIRD_PARTY_VIEWERS:
            unlabeled = watched.page.evaluate(UNLABELED_CONTROLS)
            problems.extend(f"{path}: control without a label: {name}" for name in unlabeled)
    assert not problems, problems
    assert not watched.foreign, f"requests outside the server: {watched.foreign}"


def test_evidence_form_submits_an_example_patient_and_shows_cautions_and_trials(watched, live_server, answers):
    page = watched.page
    page.goto(live_server + "/evidence/form")
    page.fill("#f-record", EXAMPLE.read_text(encoding="utf-8"))
    page.click("button[type=submit]:has-text('Show the evidence')")
    page.wait_for_selector("section.answer")
    expected = answers[EXAMPLE.name]["summary"]
    cautions = page.locator("ul.cautions li.caution a").all_inner_texts()
    assert cautions and cautions == [c["label"] for c in expected["cautions"]]
    trials = page.locator("table.trials tbody tr td:first-child a").all_inner_texts()
    assert trials == [t["label"] for t in expected["trials"]]
    page.locator("table.trials a", has_text="EORTC 40983").click()  # each item leads to its study
    page.wait_for_selector("figure.forest svg")
    assert page.url.endswith("/studies/EORTC40983")
    assert not watched.errors and not watched.foreign, (watched.errors, watched.foreign)


def test_evidence_form_fields_show_validation_next_to_the_field_and_print_without_the_form(watched, live_server):
    page = watched.page
    page.goto(live_server + "/evidence/form")
    page.fill("#f-id", "browser-1")
    page.fill("#f-age", "7")  # outside 18-110
    page.select_option("#f-liverMetastases-resectability", "resectable")
    page.click("button[type=submit]:has-text('Show the evidence')")
    error = page.locator("#f-age-error")
    assert "age must be an integer from 18 to 110" in error.inner_text()
    assert page.locator("#f-age").get_attribute("aria-invalid") == "true"
    assert "f-age-error" in page.locator("#f-age").get_attribute("aria-describedby")
    assert page.locator("#f-liverMetastases-resectability").input_value() == "resectable"  # what was typed is kept
    page.fill("#f-age", "64")
    page.focus("#f-age")
    page.keyboard.press("Enter")  # the keyboard alone submits the form
    page.wait_for_selector("section.answer")
    page.emulate_media(media="print")
    assert not page.locator("form.patient").is_visible() and page.locator("section.answer").is_visible()
    page.screenshot(path=str(SHOTS / "evidence-print.png"), full_page=True)
    assert not watched.foreign


def test_eortc_40983_page_shows_its_forest_plot(watched, live_server):
    page = watched.page
    page.goto(live_server + "/studies/EORTC40983")
    plot = page.locator("section.endpoint", has_text="progression-free survival").locator("figure.forest svg").first
    box = plot.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 80
    first = page.locator("section.endpoint").first  # the primary endpoint comes first
    assert "primary endpoint" in first.locator("h3").inner_text() and "progression-free survival" in first.locator("h3").inner_text()
    assert "0.79 (0.62–1.02)" in first.inner_text()  # the ITT hazard ratio the plot draws, in the table beside it
    plot.screenshot(path=str(SHOTS / "EORTC40983-forest.png"))
    assert not watched.errors and not watched.foreign, (watched.errors, watched.foreign)


def test_pages_work_without_javascript(browser, live_server):
    w = Watched(browser, live_server, javascript=False)
    try:
        w.page.goto(live_server + "/studies/EORTC40983")
        assert w.page.locator("figure.forest svg").first.is_visible()
        w.page.goto(live_server + "/evidence/form")
        w.page.fill("#f-record", EXAMPLE.read_text(encoding="utf-8"))
        w.page.click("button[type=submit]:has-text('Show the evidence')")
        assert w.page.locator("ul.cautions li.caution").count() > 0
        assert not w.errors and not w.foreign, (w.errors, w.foreign)
    finally:
        w.close()
