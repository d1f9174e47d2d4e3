"""Browser tests' server and browser: the test's app served on a loopback port, and Debian's
Chromium driven by Playwright."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from referrals.accounts.models import User
from tests.functional.chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium
from tests.tipline.admin.people import Person, account_service
from tipline.auth.sessions import USER_ID
from tipline.runtime import Runtime

if TYPE_CHECKING:
    from playwright import sync_api


class LiveServer:
    """The test's app served on a loopback port, noting every answer's status."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.answers: list[tuple[str, int]] = []
        inner = app.wsgi_app

        def noting(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            def start(status: str, headers: Any, *args: Any) -> Any:
                self.answers.append((environ["PATH_INFO"], int(status.split()[0])))
                return start_response(status, headers, *args)

            return inner(environ, start)

        self.server = make_server("127.0.0.1", 0, noting, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def cookie_for(self, runtime: Runtime, person: Person) -> dict[str, str]:
        """A signed-in browser's session cookie for ``person``."""
        with runtime.session_factory() as session:
            user = session.get(User, person.id)
            assert user is not None
            token = account_service(runtime, session).start_session(user, address="127.0.0.1")
        serializer = self.app.session_interface.get_signing_serializer(self.app)  # type: ignore[attr-defined]
        # Flask-Login's user id in the cookie: here, the server-side session's token.
        value = serializer.dumps({USER_ID: token})
        return {"name": self.app.config["SESSION_COOKIE_NAME"], "value": value, "url": self.url}


@pytest.fixture
def live(app: Flask) -> Iterator[LiveServer]:
    server = LiveServer(app)
    server.thread.start()
    yield server
    server.server.shutdown()
    server.thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[sync_api.Browser]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
