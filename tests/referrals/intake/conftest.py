"""Tip documents for the intake tests: the published examples, as dicts to change and bytes to
parse."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@cache
def _example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text("utf-8"))
    return document


def example(name: str = "tip-valid.json") -> dict[str, Any]:
    """A fresh copy of a published example document."""
    return copy.deepcopy(_example(name))


def encode(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


@pytest.fixture
def tip() -> dict[str, Any]:
    """The realistic example partners are pointed to (``fixtures/tip-valid.json``)."""
    return example()
