"""The start page's surroundings: the site's icon, linked from every page and served to all."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_every_page_links_an_icon_that_is_served(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert icon.get_data(as_text=True).startswith("<svg")
    icon.close()


def test_the_old_icon_address_leads_to_it(client: FlaskClient) -> None:
    answer = client.get("/favicon.ico")
    assert answer.status_code == 301 and answer.headers["Location"] == "/static/favicon.svg"
