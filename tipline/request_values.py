"""Numbers and times read from URLs, query strings and page cursors, kept within what Python
and the databases can hold.

Out of range is the client's mistake and is answered 400. Left unchecked, a 30-digit id
overflows SQLite's 64-bit integers, an id past 2^31 PostgreSQL's ``integer`` columns, and
``0001-01-01T00:00:00+01:00`` Python's datetime when converted to UTC: all were 500s.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from flask import Flask, request
from werkzeug.exceptions import BadRequest
from werkzeug.routing.converters import IntegerConverter

from referrals.intake.receiving import Cursor

# Ids are INTEGER columns: 32 bits on PostgreSQL (64 on SQLite). A number past this names
# nothing, on either database.
MAX_ID = 2**31 - 1
# A day inside Python's datetime range at each end: such a time can be converted to UTC, and a
# date filter can add the day it includes, without overflowing.
EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)
EARLIEST_DATE = EARLIEST.date()
LATEST_DATE = LATEST.date()
RANGE_TEXT = f"between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}"
_TIP_ID = re.compile(r"[0-9a-f-]{36}")  # what a cursor names: a tip's UUID


class IdConverter(IntegerConverter):
    """``<int:…>`` in a URL, refused with 400 beyond what an id column holds (``MAX_ID``)."""

    regex = r"[0-9]+"  # ASCII digits only (``\\d`` also matches other scripts' digits)

    def to_python(self, value: str) -> int:
        number = int(super().to_python(value))
        if number > MAX_ID:
            raise BadRequest(description="That number is too large to name anything here.")
        return number


def within_range(moment: datetime) -> bool:
    """Whether an aware time lies between ``EARLIEST`` and ``LATEST``."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        return False
    return EARLIEST <= utc <= LATEST


def date_within_range(day: date) -> bool:
    """Whether a date lies between ``EARLIEST_DATE`` and ``LATEST_DATE``."""
    return EARLIEST_DATE <= day <= LATEST_DATE


def query_int(name: str, *, description: str) -> int | None:
    """The query-string integer ``name`` (ASCII digits), None when absent.

    Raises:
        BadRequest: with ``description``, when it is not such a number or out of range.
    """
    value = request.args.get(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_ID:
        raise BadRequest(description=description)
    return int(value)


def page_cursor(value: str) -> Cursor:
    """A listing's page cursor as given out with a previous page.

    Raises:
        ValueError: it is not one this service gave out (malformed, or its time or tip id
            could not have come from here).
    """
    cursor = Cursor.decode(value)
    if not within_range(cursor.updated_at) or not _TIP_ID.fullmatch(cursor.tip_id):
        raise ValueError("cursor is not one this service gave out")
    return cursor


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _refuse_nul_characters() -> None:
    """400 for a NUL character in the path, the query string or a form field.

    PostgreSQL cannot store or even compare one in a text value: the query fails (a 500)
    before any check of ours could say what is wrong.
    """
    values = [request.path, *(text for pair in request.args.items(multi=True) for text in pair)]
    if request.mimetype in FORM_TYPES:
        values += [text for pair in request.form.items(multi=True) for text in pair]
    if any("\x00" in value for value in values):
        raise BadRequest(description="The request holds a NUL character, which nothing here takes.")


def init_app(app: Flask) -> None:
    # Before any blueprint adds its rules: each rule looks its converters up as it is added.
    app.url_map.converters["int"] = IdConverter
    app.before_request(_refuse_nul_characters)
