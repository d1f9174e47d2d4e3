"""The pages as Chromium lays them out with the real stylesheet: the one-time link shown whole,
every handling marking readable, no request for something missing (the icon)."""

from __future__ import annotations

import dataclasses

import pytest
from flask import Flask

from tests.conftest import RegisteredAgency
from tests.functional.chromium import require_chromium
from tests.functional.conftest import LiveServer
from tests.tipline.admin.people import Person, enrolled
from tipline import create_app
from tipline.partner.forms import TLP_LABELS
from tipline.runtime import Runtime

require_chromium()
from playwright import sync_api  # noqa: E402 - only once the browser is known to be there

# Where a national centre's people reach it: links built on it are long.
BASE_URL = "http://tipline.national-centre-against-online-exploitation.example"


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    settings = dataclasses.replace(runtime.settings, base_url=BASE_URL)
    application = create_app(runtime=dataclasses.replace(runtime, settings=settings))
    application.config["TESTING"] = True
    return application


def _page_as(
    browser: sync_api.Browser, live: LiveServer, runtime: Runtime, person: Person
) -> sync_api.Page:
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    context.add_cookies([live.cookie_for(runtime, person)])  # type: ignore[list-item]
    page = context.new_page()
    page.set_default_timeout(30_000)
    return page


def test_the_one_time_link_is_shown_whole(
    browser: sync_api.Browser, live: LiveServer, runtime: Runtime
) -> None:
    page = _page_as(browser, live, runtime, enrolled(runtime, "root@centre.example", "admin"))
    page.goto(f"{live.url}/admin/users/new")
    page.get_by_label("E-mail address", exact=True).fill("new.analyst@centre.example")
    # The click only waits for the next page to start arriving; its layout is judged once
    # the stylesheet has loaded, as a person sees it.
    with page.expect_navigation(wait_until="load"):
        page.get_by_role("button", name="Create the account").click()
    box = page.get_by_label("One-time enrolment link", exact=True)
    link = box.input_value()
    assert link.startswith(f"{BASE_URL}/enrol?token=")
    # Nothing of it scrolled out of sight, across or down.
    width, client_width, height, client_height = box.evaluate(
        "box => [box.scrollWidth, box.clientWidth, box.scrollHeight, box.clientHeight]"
    )
    assert width <= client_width and height <= client_height


def test_every_handling_marking_can_be_read_whole(
    browser: sync_api.Browser,
    live: LiveServer,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
) -> None:
    officer = enrolled(
        runtime, "officer@agency-a.example", "partner", agency_id=agencies["agency-a"].id
    )
    page = _page_as(browser, live, runtime, officer)
    page.goto(f"{live.url}/partner/tips/new")
    main = page.locator("main").bounding_box()
    assert main is not None
    for label in TLP_LABELS.values():
        text = page.get_by_text(label, exact=True)
        assert text.is_visible(), label
        box = text.bounding_box()
        assert box is not None and box["x"] + box["width"] <= main["x"] + main["width"], label
        assert text.evaluate("e => e.scrollWidth <= e.clientWidth"), label


def test_browsing_asks_for_nothing_that_is_missing(
    browser: sync_api.Browser, live: LiveServer, runtime: Runtime
) -> None:
    page = _page_as(browser, live, runtime, enrolled(runtime, "lead@centre.example", "lead"))
    for path in ("/", "/audit"):
        page.goto(f"{live.url}{path}")
    page.wait_for_load_state("networkidle")
    # A fresh browser asks for the site's icon: a 404 there is a console error on every page.
    assert [answer for answer in live.answers if answer[1] >= 400] == []
    assert any(path.startswith("/static/favicon") for path, _ in live.answers)
