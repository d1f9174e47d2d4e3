"""``tipline triage``: the triage rules, re-scoring open tips, the SLA clocks."""

from __future__ import annotations

import json

import click

from referrals.triage.clocks import SlaClock
from referrals.triage.rules import RuleBook
from referrals.triage.scoring import Rescorer
from tipline.cli.environment import initialised_runtime, read_settings


@click.group()
def triage() -> None:
    """The rules that score tips, and the jobs that keep scores and SLA clocks current."""


@triage.command("rules")
def triage_rules() -> None:
    """Print the current rules (weights, thresholds, SLA hours, correlation cap) as JSON."""
    runtime = initialised_runtime(read_settings())
    try:
        with runtime.session_factory.begin() as session:
            current = RuleBook(session, audit=runtime.audit(session), clock=runtime.clock).current()
            click.echo(json.dumps({"version": current.version, "rules": current.rules.as_json()}))
    finally:
        runtime.close()


@triage.command("rescore")
def triage_rescore() -> None:
    """Score every open tip again under the current rules (and route those without a team).
    Workers do this by themselves when the rules change; run it after an upgrade."""
    runtime = initialised_runtime(read_settings())
    try:
        done = Rescorer(
            runtime.session_factory, audit_key=runtime.audit_key, clock=runtime.clock
        ).rescore()
    finally:
        runtime.close()
    click.echo(f"re-scored {done} open tips")


@triage.command("flag-overdue")
def triage_flag_overdue() -> None:
    """Flag open tips past their first-triage SLA now (workers do it every minute)."""
    runtime = initialised_runtime(read_settings())
    try:
        flagged = SlaClock(
            runtime.session_factory, audit_key=runtime.audit_key, clock=runtime.clock
        ).flag()
    finally:
        runtime.close()
    click.echo(f"flagged {flagged} overdue tips")
