"""A partner officer in a real browser (Debian's Chromium, driven by Playwright) against a real
server, over plain HTTP and over HTTPS: enrol, sign in with password and code, have a spent code
refused, write a tip in the web form, lose the session to an idle timeout while writing, sign in
again and find the tip as written, send it and watch it reach triage."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.functional.chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium
from tests.partners import PartnerKeys
from tests.referrals.accounts.test_totp import rfc6238_code
from tests.support import (
    PATIENCE,
    add_agency,
    free_port,
    run_tipline,
    self_signed_certificate,
    wait_for_worker,
)

ROOT = Path(__file__).parents[2]  # where wsgi.py is
EMAIL = "officer@eca.example"
PASSWORD = "a long and unusual passphrase 7"
STEP = 30  # seconds per TOTP code

require_chromium()
from playwright import sync_api  # noqa: E402 - only once the browser is known to be there


@pytest.fixture
def agency_key() -> Iterator[bytes]:
    """The agency's public key (registering an agency needs one; web tips do not use it)."""
    keys = PartnerKeys()
    keys.generate("eca")
    yield keys.public_key("eca")
    keys.close()


@pytest.fixture(params=["http", "https"])
def server(
    request: pytest.FixtureRequest,
    home_env: tuple[Path, dict[str, str]],
    agency_key: bytes,
    tmp_path: Path,
) -> Iterator[tuple[str, str]]:
    """A served instance with one partner agency and an officer of it: (base URL, enrolment
    link). Over plain HTTP it is `tipline serve`; over HTTPS, gunicorn serving the same wsgi
    app with a throwaway certificate, and a `tipline worker`."""
    _home, env = home_env
    scheme = request.param
    port = free_port()
    base_url = f"{scheme}://127.0.0.1:{port}"
    env = dict(env, TIPLINE_BASE_URL=base_url)
    assert run_tipline("init", env=env).returncode == 0
    key_file = tmp_path / "eca.asc"
    key_file.write_bytes(agency_key)
    agency_id = add_agency(env, key_file)["id"]
    officer = run_tipline(
        "user", "add", "--email", EMAIL, "--role", "partner", "--agency", str(agency_id), "--json",
        env=env,
    )  # fmt: skip
    assert officer.returncode == 0, officer.stderr
    link = json.loads(officer.stdout)["enrolment_link"]
    assert link.startswith(f"{base_url}/enrol?token=")
    certificate = None
    if scheme == "http":
        commands = [[sys.executable, "-m", "tipline", "serve", "--bind", f"127.0.0.1:{port}"]]
    else:
        certificate, key = self_signed_certificate(tmp_path)
        commands = [
            [
                sys.executable, "-m", "gunicorn", "--chdir", str(ROOT), "--workers", "2",
                "--bind", f"127.0.0.1:{port}", "--certfile", str(certificate),
                "--keyfile", str(key), "wsgi:app",
            ],
            [sys.executable, "-m", "tipline", "worker"],
        ]  # fmt: skip
    processes = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for command in commands
    ]
    try:
        wait_for_worker(port, certificate=certificate)
        yield base_url, link
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        outputs = [process.communicate(timeout=PATIENCE)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
        assert "Traceback" not in output
        assert PASSWORD not in output
    if scheme == "http":  # `serve` logs each request: the journey asked for nothing missing
        assert '" 404 ' not in outputs[0], outputs[0]


def _wait_for_step(step: int) -> None:
    """Sleep until the TOTP time step ``step`` has begun (plus a little margin)."""
    delay = step * STEP + 0.5 - time.time()
    if delay > 0:
        time.sleep(delay)


def _sign_in(page: sync_api.Page, base_url: str, code: str) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("E-mail address", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Authentication code", exact=True).fill(code)
    page.get_by_role("button", name="Sign in").click()


def _time_out_sessions(home: Path) -> None:
    """Make every session look idle for an hour, as the server would find it after a break."""
    with sqlite3.connect(home / "tipline.sqlite3") as database:
        database.execute("UPDATE user_sessions SET last_seen_at = '2000-01-01 00:00:00.000000'")


@pytest.mark.slow
def test_a_partner_officer_enrols_signs_in_and_sends_a_tip_that_reaches_triage(
    server: tuple[str, str], tmp_path: Path, home_env: tuple[Path, dict[str, str]]
) -> None:
    base_url, link = server
    home, _env = home_env
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # The throwaway certificate is not trusted: everything else about TLS is real.
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.set_default_timeout(30_000)

            # Enrolment: the link's token leaves the address bar at once.
            page.goto(link)
            assert page.url == f"{base_url}/enrol/form"
            seed = page.locator("#totp-seed").inner_text().replace(" ", "")
            page.get_by_label("New password", exact=True).fill(PASSWORD)
            page.get_by_label("Repeat the password", exact=True).fill(PASSWORD)
            page.get_by_label("Code from your authenticator app", exact=True).fill(
                rfc6238_code(seed, datetime.now(UTC))
            )
            page.get_by_role("button", name="Finish setting up").click()
            assert page.url == f"{base_url}/login"
            assert "Your account is ready" in page.content()

            # The enrolment code's step is spent; the next step's code is within the drift.
            moment = datetime.now(UTC) + timedelta(seconds=STEP)
            used_step = int(moment.timestamp()) // STEP
            code = rfc6238_code(seed, moment)
            _sign_in(page, base_url, code)
            assert page.url == f"{base_url}/"
            assert EMAIL in page.content()
            if base_url.startswith("https:"):
                cookie = {c["name"]: c for c in page.context.cookies()}["__Host-tipline"]
                assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
            page.get_by_role("button", name="Sign out").click()
            assert "You are signed out" in page.content()

            # The same code again: refused, however fresh it still is.
            _sign_in(page, base_url, code)
            assert page.url == f"{base_url}/login/code"
            assert page.get_by_role("alert").inner_text().startswith("That code is not right")

            # Once the used step has come round, the step after it is good.
            _wait_for_step(used_step)
            moment = datetime.now(UTC) + timedelta(seconds=STEP)
            used_step = int(moment.timestamp()) // STEP
            page.get_by_label("Authentication code", exact=True).fill(rfc6238_code(seed, moment))
            page.get_by_role("button", name="Sign in").click()
            assert page.url == f"{base_url}/"

            # A tip through the web form.
            page.get_by_role("link", name="Send a tip").first.click()
            page.get_by_label("Summary", exact=True).fill(
                "Facilitator offers live-streamed abuse of children."
            )
            page.get_by_label("Narrative", exact=True).fill(
                "Fictional browser test tip: sessions are offered on webcam every week."
            )
            page.get_by_label("A child is in imminent danger", exact=True).check()
            page.get_by_label("Country", exact=True).select_option("PH")
            page.get_by_label("Region or province (optional)", exact=True).fill("Central Luzon")
            page.get_by_label("Live-streamed abuse", exact=True).check()
            page.get_by_label("Number of victims (optional)", exact=True).fill("2")
            page.get_by_label("Approximate ages of the victims (optional)", exact=True).fill("7, ?")
            page.get_by_label("Selectors (optional)", exact=True).fill(
                "username@ExampleChat: sunnyday88\nphone: +63 905 123 4567"
            )
            handling = page.get_by_role("group", name="Handling (Traffic Light Protocol)")
            assert handling.get_by_role("radio", name="TLP:AMBER:", exact=False).is_checked()

            # The officer wrote for longer than the idle limit: sending signs them out, and
            # keeps what they wrote (sealed; the key only in this browser).
            _time_out_sessions(home)
            page.get_by_role("button", name="Send the tip").click()
            assert page.url.startswith(f"{base_url}/login?next=")
            assert "what you wrote is kept, encrypted" in page.content()
            _wait_for_step(used_step)
            page.get_by_label("E-mail address", exact=True).fill(EMAIL)
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_role("button", name="Continue").click()
            page.get_by_label("Authentication code", exact=True).fill(
                rfc6238_code(seed, datetime.now(UTC) + timedelta(seconds=STEP))
            )
            page.get_by_role("button", name="Sign in").click()
            assert page.url == f"{base_url}/partner/tips/new"
            assert "Here is the tip you were writing" in page.content()
            assert (
                page.get_by_label("Narrative", exact=True)
                .input_value()
                .startswith("Fictional browser test tip")
            )
            assert page.get_by_label("Live-streamed abuse", exact=True).is_checked()
            assert page.get_by_label("Country", exact=True).input_value() == "PH"
            assert handling.get_by_role("radio", name="TLP:AMBER:", exact=False).is_checked()
            page.get_by_role("button", name="Send the tip").click()
            assert "/partner/tips/" in page.url
            assert "Tip received" in page.content()
            tracking = page.locator("#tip-tracking-number").inner_text()
            assert tracking.startswith("TL-")

            # The worker processes it: the status page says so (reloaded here; the partner
            # is told the tip is safe and need not wait).
            deadline = time.monotonic() + PATIENCE
            status = page.locator("#tip-status").get_attribute("data-status")
            while status != "in_triage" and time.monotonic() < deadline:
                assert status in ("received", "processing"), page.content()
                assert "Your tip is stored" in page.content()
                time.sleep(0.5)
                page.reload()
                status = page.locator("#tip-status").get_attribute("data-status")
            assert status == "in_triage"
            assert page.locator("#tip-status").inner_text().startswith("Received and valid")
            page.screenshot(path=str(tmp_path / "tip-status.png"), full_page=True)

            page.get_by_role("link", name="Your agency's tips").first.click()
            assert tracking in page.locator("table").inner_text()
        finally:
            browser.close()
    assert (tmp_path / "tip-status.png").stat().st_size > 0
