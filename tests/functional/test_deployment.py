"""The documented deployment's shapes, with the real gunicorn: bound to a Unix socket (where
clients have no address) and talked to over that socket. (Behind a TLS proxy with
TIPLINE_TRUSTED_PROXIES: tests/tipline/test_addresses.py; over HTTPS in a real browser:
test_browser.py.)"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from sqlalchemy import select

from referrals.audit.models import AuditRecord
from referrals.database import make_engine
from tests.referrals.accounts.test_totp import rfc6238_code
from tests.support import run_tipline

ROOT = Path(__file__).parents[2]  # where wsgi.py is
EMAIL = "analyst@centre.example"
PASSWORD = "a long and unusual passphrase 7"


class UnixSocketConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(self.path))


class UnixSocketBrowser:
    """Just enough of a browser: requests over a Unix socket, cookies kept between them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, target: str, form: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        """(status, Location header, body) of one request."""
        headers = {"Accept": "text/html"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = UnixSocketConnection(self.path)
        try:
            connection.request(method, target, body=body, headers=headers)
            answer = connection.getresponse()
            text = answer.read().decode()
            for cookie in answer.headers.get_all("Set-Cookie") or []:
                name, _, rest = cookie.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
            return answer.status, answer.headers.get("Location", ""), text
        finally:
            connection.close()


def _hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]+)"', page) or re.search(
        rf'value="([^"]+)"[^>]*name="{name}"', page
    )
    assert match, f"no {name} on the page"
    return match.group(1)


@pytest.fixture
def socket_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="tl-sock-", dir="/tmp"))  # socket paths are short
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_behind_a_unix_socket_sign_in_works_and_the_address_is_recorded_as_unknown(
    home_env: tuple[Path, dict[str, str]], socket_folder: Path
) -> None:
    home, env = home_env
    assert run_tipline("init", env=env).returncode == 0
    added = run_tipline("user", "add", "--email", EMAIL, "--role", "analyst", "--json", env=env)
    assert added.returncode == 0, added.stderr
    link = urlsplit(json.loads(added.stdout)["enrolment_link"])
    path = socket_folder / "web.sock"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--chdir", str(ROOT), "--bind", f"unix:{path}",
         "--workers", "1", "wsgi:app"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        browser = UnixSocketBrowser(path)
        deadline = time.monotonic() + 60
        while not path.exists() or _health(browser) != 200:
            assert time.monotonic() < deadline, "gunicorn did not answer on its socket"
            time.sleep(0.2)

        # Enrolment: the link, the form (with the authenticator's seed), the answer.
        status, location, _ = browser.request("GET", f"{link.path}?{link.query}")
        assert (status, location) == (302, "/enrol/form")
        _, _, page = browser.request("GET", "/enrol/form")
        seed = re.search(r'id="totp-seed">([A-Z2-7 ]+)<', page)
        assert seed is not None
        secret = seed.group(1).replace(" ", "")
        code = rfc6238_code(secret, datetime.now(UTC))
        status, location, _ = browser.request(
            "POST",
            "/enrol/form",
            {"csrf_token": _hidden(page, "csrf_token"), "password": PASSWORD,
             "confirm": PASSWORD, "code": code},
        )  # fmt: skip
        assert (status, location) == (302, "/login")

        # Sign-in: password, then the next step's code (the enrolment's is spent).
        _, _, page = browser.request("GET", "/login")
        form = {"csrf_token": _hidden(page, "csrf_token"), "email": EMAIL, "password": PASSWORD}
        status, location, _ = browser.request("POST", "/login", form)
        assert (status, location) == (302, "/login/code")
        _, _, page = browser.request("GET", "/login/code")
        code = rfc6238_code(secret, datetime.now(UTC) + timedelta(seconds=30))
        status, location, _ = browser.request(
            "POST", "/login/code", {"csrf_token": _hidden(page, "csrf_token"), "code": code}
        )
        assert (status, location) == (302, "/")
        status, _, page = browser.request("GET", "/")
        assert status == 200 and EMAIL in page
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    assert "Traceback" not in output, output

    engine = make_engine(f"sqlite:///{home / 'tipline.sqlite3'}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(AuditRecord.action, AuditRecord.address).where(
                    AuditRecord.action.in_(["account.enrolled", "login.succeeded"])
                )
            ).all()
    finally:
        engine.dispose()
    assert sorted(rows) == [("account.enrolled", None), ("login.succeeded", None)]


def _health(browser: UnixSocketBrowser) -> int:
    try:
        return browser.request("GET", "/healthz")[0]
    except OSError:
        return 0
