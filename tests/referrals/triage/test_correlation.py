"""Correlation on blind indexes: links across agencies, exclusions, the cap, races, the plan."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from crypto import InvalidSelector
from referrals.intake.models import TipSelector
from referrals.triage import correlation
from referrals.triage.correlation import (
    Correlator,
    SelectorRulings,
    UnknownSelectorValue,
    linked_tip_count,
    reference_of,
)
from referrals.triage.models import SelectorRule, SelectorValue, TipLink
from referrals.triage.routing import route
from tests.referrals.triage.fixtures import MakeTip
from tests.support import PATIENCE
from tipline.runtime import Runtime

PHONE = "+639051234567"


def index(runtime: Runtime, kind: str, value: str, platform: str | None = None) -> str:
    assert runtime.blind_index is not None
    return runtime.blind_index.compute(kind, value, platform, default_region="PH")


def register(runtime: Runtime, tip_id: str, selectors: dict[str, str], cap: int = 50) -> int:
    with runtime.session_factory.begin() as session:
        Correlator(session, clock=runtime.clock).register(tip_id, selectors, cap=cap)
        return linked_tip_count(session, tip_id)


def links(runtime: Runtime, tip_id: str) -> set[tuple[str, str]]:
    with runtime.session_factory() as session:
        return {
            (row.earlier_tip_id, row.selector_type)
            for row in session.execute(select(TipLink).where(TipLink.tip_id == tip_id)).scalars()
        }


def rulings(runtime: Runtime, session):  # type: ignore[no-untyped-def]
    return SelectorRulings(
        session, audit=runtime.audit(session), clock=runtime.clock, blind_index=runtime.blind_index
    )


def test_a_later_tip_links_to_each_earlier_one_by_what_they_share(
    runtime: Runtime, make_tip: MakeTip
) -> None:
    phone = index(runtime, "phone", "0905 123 4567")
    handle = index(runtime, "username", "@SunnyDay88", "ExampleChat")
    first, second, third = make_tip(), make_tip(), make_tip()
    assert register(runtime, first, {phone: "phone", handle: "username"}) == 0
    assert register(runtime, second, {index(runtime, "phone", PHONE): "phone"}) == 1
    assert (
        register(
            runtime, third, {index(runtime, "username", "sunnyday88", " examplechat "): "username"}
        )
        == 1
    )
    assert links(runtime, second) == {(first, "phone")}
    assert links(runtime, third) == {(first, "username")}
    with runtime.session_factory() as session:
        # The earlier tip sees both later ones; the later two share nothing with each other.
        assert linked_tip_count(session, first) == 2
        assert session.get(SelectorValue, phone).tip_count == 2  # type: ignore[union-attr]


def test_a_tip_with_as_many_selectors_as_a_document_allows_links_by_every_one(
    runtime: Runtime, make_tip: MakeTip
) -> None:
    """500 selectors (the schema's most), each shared with an earlier tip: every value
    links, in the one statement that writes the links of values carried by few tips."""
    values = [index(runtime, "email", f"person{i}@example.org") for i in range(500)]
    earlier = [make_tip() for _ in range(3)]
    for i, value in enumerate(values):
        with runtime.session_factory.begin() as session:
            session.execute(
                insert(TipSelector).values(
                    tip_id=earlier[i % 3], selector_type="email", blind_index=value
                )
            )
    later = make_tip()
    assert register(runtime, later, dict.fromkeys(values, "email"), cap=1000) == 3
    with runtime.session_factory() as session:
        written = session.scalars(select(TipLink.blind_index).where(TipLink.tip_id == later))
        assert sorted(written) == sorted(values)


def test_an_excluded_value_never_links_and_hides_links_it_made(
    runtime: Runtime, make_tip: MakeTip
) -> None:
    helpline = index(runtime, "phone", PHONE)
    first, second = make_tip(), make_tip()
    register(runtime, first, {helpline: "phone"})
    assert register(runtime, second, {helpline: "phone"}) == 1
    with runtime.session_factory.begin() as session:
        # Typed by the administrator in another spelling: the same value.
        rulings(runtime, session).exclude_value(
            "phone",
            "0905-123-4567",
            platform=None,
            default_region="PH",
            actor="user:1",
            address=None,
        )
    with runtime.session_factory() as session:
        assert linked_tip_count(session, first) == 0
    third = make_tip()
    assert register(runtime, third, {helpline: "phone"}) == 0
    # Written all the same (within the cap), hidden while excluded: clearing brings them back.
    assert links(runtime, third) == {(first, "phone"), (second, "phone")}
    with runtime.session_factory.begin() as session:
        rulings(runtime, session).rule(reference_of(helpline), None, actor="user:1", address=None)
    with runtime.session_factory() as session:
        assert linked_tip_count(session, third) == 2


def test_a_value_can_be_excluded_before_any_tip_carries_it(
    runtime: Runtime, make_tip: MakeTip
) -> None:
    with runtime.session_factory.begin() as session:
        excluded = rulings(runtime, session).exclude_value(
            "email",
            "abuse@Platform.example",
            platform=None,
            default_region=None,
            actor="user:1",
            address=None,
        )
        assert (excluded.tip_count, excluded.rule) == (0, "excluded")
    value = index(runtime, "email", "abuse@platform.example")
    first, second = make_tip(), make_tip()
    register(runtime, first, {value: "email"})
    assert register(runtime, second, {value: "email"}) == 0


def test_a_value_typed_wrong_is_refused_without_being_quoted(runtime: Runtime) -> None:
    with runtime.session_factory.begin() as session, pytest.raises(InvalidSelector) as refused:
        rulings(runtime, session).exclude_value(
            "phone",
            "12 secret 34",
            platform=None,
            default_region="PH",
            actor="user:1",
            address=None,
        )
    assert "secret" not in str(refused.value)


def test_past_the_cap_a_value_stops_linking_until_it_is_allowed(
    runtime: Runtime, make_tip: MakeTip
) -> None:
    shared = index(runtime, "ip", "203.0.113.9")
    tips = [make_tip() for _ in range(5)]
    found = [register(runtime, tip, {shared: "ip"}, cap=3) for tip in tips[:4]]
    # The second and third link to those before them; the fourth is one too many.
    assert found == [0, 1, 2, 0]
    with runtime.session_factory.begin() as session:
        listed = rulings(runtime, session).over_correlating(cap=3)
        assert [(value.blind_index, value.tip_count) for value in listed] == [(shared, 4)]
        rulings(runtime, session).rule(
            reference_of(shared), SelectorRule.ALLOWED, actor="user:1", address=None
        )
        assert rulings(runtime, session).over_correlating(cap=3) == []
    assert register(runtime, tips[4], {shared: "ip"}, cap=3) == 4


def test_a_value_carried_by_more_tips_than_the_link_limit_links_the_most_recent(
    runtime: Runtime, make_tip: MakeTip, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An allowed value shared by thousands of tips must not make a tip's processing
    unbounded: past ALLOWED_LINKS (3 here, 500 in production) only the most recent link."""
    monkeypatch.setattr(correlation, "ALLOWED_LINKS", 3)
    shared = index(runtime, "ip", "203.0.113.9")
    other = index(runtime, "phone", PHONE)
    tips = [make_tip() for _ in range(6)]
    with runtime.session_factory.begin() as session:
        rulings(runtime, session).exclude_value(
            "ip", "203.0.113.9", platform=None, default_region=None, actor="user:1", address=None
        )
        rulings(runtime, session).rule(
            reference_of(shared), SelectorRule.ALLOWED, actor="user:1", address=None
        )
    for tip in tips[:5]:
        register(runtime, tip, {shared: "ip"})
    register(runtime, tips[1], {other: "phone"})
    assert register(runtime, tips[5], {shared: "ip", other: "phone"}) == 4
    assert links(runtime, tips[5]) == {
        (tips[4], "ip"),
        (tips[3], "ip"),
        (tips[2], "ip"),
        (tips[1], "phone"),
    }


def test_a_ruling_needs_a_reference_that_names_one_value(runtime: Runtime) -> None:
    with runtime.session_factory.begin() as session, pytest.raises(UnknownSelectorValue):
        rulings(runtime, session).rule("", SelectorRule.EXCLUDED, actor="user:1", address=None)


def test_two_tips_sharing_a_value_processed_at_once_still_link(
    runtime: Runtime, make_tip: MakeTip
) -> None:
    """The later transaction waits for the earlier's lock on the value, then sees it."""
    value = index(runtime, "phone", PHONE)
    first, second = make_tip(), make_tip()
    registered = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def hold_first() -> None:
        try:
            with runtime.session_factory.begin() as session:
                Correlator(session, clock=runtime.clock).register(first, {value: "phone"}, cap=50)
                registered.set()
                release.wait(PATIENCE)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            registered.set()

    holder = threading.Thread(target=hold_first)
    holder.start()
    assert registered.wait(PATIENCE)
    second_done = threading.Thread(target=lambda: register(runtime, second, {value: "phone"}))
    second_done.start()
    second_done.join(1.0)
    assert second_done.is_alive(), "the second tip did not wait for the first"
    release.set()
    holder.join(PATIENCE)
    second_done.join(PATIENCE)
    assert not errors
    assert links(runtime, second) == {(first, "phone")}


def test_matching_uses_the_index_at_volume(runtime: Runtime, make_tip: MakeTip) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("the plan is PostgreSQL's (SQLite has no cost-based choice to check)")
    tips = [make_tip() for _ in range(200)]
    with runtime.engine.begin() as connection:
        connection.execute(
            insert(TipSelector),
            [
                {"tip_id": tip, "selector_type": "ip", "blind_index": f"{n:060d}{k:04d}"}
                for n, tip in enumerate(tips)
                for k in range(100)
            ],
        )
        connection.execute(text("ANALYZE tip_selectors"))
        plan = "\n".join(
            connection.execute(
                text(
                    "EXPLAIN SELECT tip_id, blind_index FROM tip_selectors "
                    "WHERE blind_index IN (:a, :b) AND tip_id != :me"
                ),
                {"a": f"{5:060d}{7:04d}", "b": f"{9:060d}{1:04d}", "me": tips[0]},
            ).scalars()
        )
    assert "ix_tip_selectors_blind_index" in plan, plan
    assert "Seq Scan" not in plan, plan


def test_routing_prefers_the_region_and_ignores_how_it_is_written(
    runtime: Runtime, make_team: Any
) -> None:
    country = make_team("Philippines desk", "PH")
    luzon = make_team("Luzon desk", "PH", ["Central  Luzon", "Ilocos"])
    with runtime.session_factory() as session:
        assert route(session, country="PH", region=" central luzon ") == luzon
        assert route(session, country="PH", region="Mindanao") == country
        assert route(session, country="PH", region=None) == country
        assert route(session, country="TH", region="Central Luzon") is None
