"""Benchmark of the analyst's desk at national volume, on PostgreSQL (the issue's
``bench/queue.py``: named so as not to hide the standard library's ``queue`` from the other
benchmarks of this folder, which Python puts first on their path).

Run: .venv/bin/python bench/desk.py [--tips 1000000] [--referrals 300000] [--requests 200]

Sets up a scratch home on a database of its own (``tipline_bench`` on the local PostgreSQL,
dropped and created again; ``--database-url`` to choose another), with four teams and an
analyst of one of them, and seeds, in SQL on the server, TIPS tips with 3 selectors each (5 %
open in triage, 30 % accepted into REFERRALS referrals, the rest declined; a few percent of
the selector values shared, so some tips are linked), then 20 real tips sealed by a partner
and processed by the pipeline (their content is what opening a tip decrypts). No clock runs
during any of that.

Then measures, server-side through the app (Flask's test client in this process: the request
is routed, authorised, rendered and audited as in production, without the network):
  * the queue page, first page and a deep keyset page (10,000 tips down), each with and
    without filters (priority, has matches, unassigned): target p95 < 50 ms;
  * opening a tip, decryption included: target p50 < 100 ms;
  * correlating a new tip's 3 selectors against everything held (timed inside a transaction
    already open, as processing calls it, then rolled back): target < 10 ms;
  * the lead's dashboard (referrals in every stage, one operation per 30 referrals, outcomes):
    target p95 < 200 ms; and computing its figures for one team, as the workers do every
    minute (the page reads what they kept);
each beside the same run's trivial endpoint (the signed-in home page: the app's own
per-request cost of a session, an access check and a template).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from scratch_centre import open_centre  # noqa: E402

from tests.partners import PartnerKeys, valid_tip  # noqa: E402

TEAMS = (("Manila", "PH"), ("Bangkok", "TH"), ("Jakarta", "ID"), ("Hanoi", "VN"))


def fresh_database(url: str) -> None:
    """Drop and create the benchmark's database (never the one the tests use)."""
    target = sa.engine.make_url(url)
    name = target.database
    if not name or name == "test":
        raise SystemExit("give the benchmark a database of its own (not the tests')")
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


SEED = """
INSERT INTO tips (id, tracking_number, agency_id, status, received_at, updated_at,
    ciphertext_sha256, ciphertext_bytes, attempts, processed_at, schema, reported_at,
    imminent_danger, ongoing_abuse, live_streaming, country, region, location_precision,
    victim_count, youngest_victim_age, tlp, unindexed_selectors, priority, priority_score,
    priority_reasons, rules_version, sla_due_at, team_id, triaged_at, referral_id)
SELECT
    md5('tip' || g)::uuid::text,
    'TB' || lpad(g::text, 10, '0'),
    :agency,
    CASE WHEN g % 20 = 0 THEN 'in_triage' WHEN g % 20 <= 6 THEN 'accepted' ELSE 'declined' END,
    at, at, md5('c' || g) || md5('d' || g), 2048, 1, at, 'tipline.tip/1', at,
    g % 31 = 0, g % 7 = 0, g % 53 = 0,
    (ARRAY[:c1, :c2, :c3, :c4])[team],
    'Region ' || (g % 12),
    'region', 1 + g % 3, 6 + g % 11, 'AMBER', 0,
    'P' || (1 + g % 4),
    10 * (g % 9),
    '["ongoing abuse (+20)"]',
    1,
    at + CASE g % 4 WHEN 0 THEN interval '1 hour' WHEN 1 THEN interval '1 day'
                    WHEN 2 THEN interval '7 days' ELSE interval '30 days' END,
    (ARRAY[:t1, :t2, :t3, :t4])[team],
    CASE WHEN g % 20 = 0 THEN NULL ELSE at + interval '2 hours' END,
    CASE WHEN g % 20 BETWEEN 1 AND 6 AND (g / 20) * 6 + g % 20 <= :referrals
         THEN (g / 20) * 6 + g % 20 END
FROM (
    SELECT g, 1 + (g / 20) % 4 AS team,
           now() - make_interval(secs => g * 30) AS at
    FROM generate_series(1, :tips) AS g
) AS numbered;
"""

OPERATIONS = """
INSERT INTO operations (id, reference, team_id, lead_unit_id, planned_for,
    country, region, status, created_at, created_by_id, approved_at, conducted_at, debriefed_at,
    children_safeguarded, suspects_arrested, updated_at)
SELECT o, 'OP-2026-' || lpad(o::text, 6, '0'), (ARRAY[:t1, :t2, :t3, :t4])[1 + o % 4], :unit,
       (now() - make_interval(days => o % 330))::date, 'PH', 'Region ' || (o % 12),
       (ARRAY['planning', 'approved', 'conducted', 'debriefed', 'debriefed'])[1 + o % 5],
       now() - make_interval(days => o % 330), :lead, now() - make_interval(days => o % 330),
       CASE WHEN o % 5 >= 2 THEN now() - make_interval(days => o % 330) END,
       CASE WHEN o % 5 >= 3 THEN now() - make_interval(days => o % 330) END,
       CASE WHEN o % 5 >= 3 THEN o % 6 END, CASE WHEN o % 5 >= 3 THEN o % 3 END,
       now() - make_interval(days => o % 330)
FROM generate_series(1, :operations) AS o;
"""

# Referrals in every stage (one in nine each), those from "operation planned" on in an
# operation of three, with outcomes from "outcome recorded" on.
REFERRALS = """
INSERT INTO referrals (id, reference, team_id, stage, stage_entered_at, priority, created_at,
    created_by_id, updated_at, operation_id, children_safeguarded, suspects_arrested,
    first_tip_at)
SELECT r, 'RF-2026-' || lpad(r::text, 6, '0'), (ARRAY[:t1, :t2, :t3, :t4])[1 + r % 4],
       (ARRAY['assessment', 'investigation', 'handover_pending', 'with_unit',
              'operation_planned', 'operation_conducted', 'outcome_recorded', 'aftercare',
              'closed'])[1 + r % 9],
       now() - make_interval(secs => r * 90), 'P' || (1 + r % 4),
       now() - make_interval(secs => r * 90), :lead, now() - make_interval(secs => r * 90),
       CASE WHEN r % 9 BETWEEN 4 AND 7 THEN 1 + (r / 3) % :operations END,
       CASE WHEN r % 9 IN (6, 7) THEN r % 4 END,
       CASE WHEN r % 9 IN (6, 7) THEN r % 2 END,
       now() - make_interval(secs => r * 90) - interval '2 days'
FROM generate_series(1, :referrals) AS r;
"""

# Each referral owes its outcome to the agency of its tips (one agency in this bench).
REFERRAL_AGENCIES = """
INSERT INTO referral_agencies (referral_id, agency_id)
SELECT DISTINCT referral_id, agency_id FROM tips WHERE referral_id IS NOT NULL;
"""

SELECTORS = """
INSERT INTO tip_selectors (tip_id, selector_type, blind_index)
SELECT md5('tip' || g)::uuid::text,
       (ARRAY['email', 'phone', 'username'])[k],
       encode(sha256(convert_to('value' || ((g * 3 + k) % :values), 'UTF8')), 'hex')
FROM generate_series(1, :tips) AS g, generate_series(1, 3) AS k;
"""

VALUES = """
INSERT INTO selector_values (blind_index, selector_type, tip_count, first_seen_at, last_seen_at)
SELECT blind_index, min(selector_type), count(*), now() - interval '1 year', now()
FROM tip_selectors GROUP BY blind_index;
"""

LINKS = """
INSERT INTO tip_links (tip_id, earlier_tip_id, blind_index, selector_type, linked_at)
SELECT later.tip_id, earlier.tip_id, later.blind_index, later.selector_type, now()
FROM tip_selectors AS later
JOIN tip_selectors AS earlier
  ON earlier.blind_index = later.blind_index AND earlier.id < later.id;
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(requests: int, call: Callable[[], object]) -> list[float]:
    for _ in range(5):  # warm: caches, connections, compiled statements
        call()
    laps = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        laps.append((time.perf_counter() - started) * 1000)
    return laps


def report(name: str, laps: list[float], baseline: list[float], target: str) -> None:
    print(
        f"{name:<44} p50 {statistics.median(laps):7.2f} ms  p95 {percentile(laps, 0.95):7.2f} ms"
        f"   (trivial endpoint p50 {statistics.median(baseline):5.2f} ms)   target {target}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tips", type=int, default=1_000_000)
    parser.add_argument("--referrals", type=int, default=300_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--database-url",
        default=f"postgresql+psycopg://{os.environ.get('USER') or 'root'}@127.0.0.1:5432/"
        "tipline_bench",
    )
    options = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="tl-bench-queue-", dir="/tmp"))
    partner = PartnerKeys()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")}
    env.update(
        TIPLINE_HOME=str(scratch / "home"),
        TIPLINE_DATABASE_URL=options.database_url,
        TIPLINE_LOG_LEVEL="WARNING",
    )
    runtime = None
    try:
        fresh_database(options.database_url)
        intake_fpr, added = open_centre(env, scratch, partner)
        agency = added["id"]

        os.environ.update({k: v for k, v in env.items() if k.startswith("TIPLINE_")})
        from referrals.accounts.models import Team
        from referrals.intake import tasks
        from referrals.intake.receiving import TipReceiver
        from referrals.triage.correlation import Correlator
        from tests.tipline.admin.people import add_team, add_unit, enrolled, signed_in_client
        from tipline import create_app
        from tipline.config import Settings
        from tipline.runtime import Runtime

        runtime = Runtime.build(Settings.from_environment())
        for name, country in TEAMS:
            add_team(runtime, name, country)
        unit = add_unit(runtime, "Bench unit")
        analyst = enrolled(runtime, "analyst@bench.example", "analyst", team="Manila")
        lead = enrolled(runtime, "lead@bench.example", "lead", team="Manila")
        with runtime.session_factory() as session:
            team_ids = [session.scalar(sa.select(Team.id).where(Team.name == n)) for n, _ in TEAMS]
        names = {f"t{i + 1}": team for i, team in enumerate(team_ids)}
        names.update({f"c{i + 1}": country for i, (_, country) in enumerate(TEAMS)})

        started = time.perf_counter()
        with runtime.engine.begin() as connection:
            operations = max(options.referrals // 30, 1)
            connection.execute(
                sa.text(OPERATIONS),
                {**names, "operations": operations, "unit": unit, "lead": lead.id},
            )
            connection.execute(
                sa.text(REFERRALS),
                {**names, "referrals": options.referrals, "lead": lead.id,
                 "operations": operations},
            )  # fmt: skip
            connection.execute(
                sa.text(SEED),
                {**names, "tips": options.tips, "agency": agency, "referrals": options.referrals},
            )
            # Values drawn from slightly fewer than one per selector: a few are shared.
            values = int(options.tips * 3 * 0.95)
            connection.execute(sa.text(SELECTORS), {"tips": options.tips, "values": values})
            connection.execute(sa.text(REFERRAL_AGENCIES))
            connection.execute(sa.text(VALUES))
            connection.execute(sa.text(LINKS))
        with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(sa.text("VACUUM ANALYZE"))
        with runtime.engine.connect() as connection:
            counts = {
                table: connection.scalar(sa.text(f"SELECT count(*) FROM {table}"))  # noqa: S608
                for table in ("tips", "tip_selectors", "tip_links", "referrals", "operations")
            }
        print(f"# seeded {counts} in {time.perf_counter() - started:.0f} s, before any clock")

        # Real tips, sealed and processed as in production: the ones opened below.
        real = []
        for i in range(20):
            body = partner.seal(
                valid_tip(external_reference=f"BENCH-{i}", location={"country": "PH"}),
                recipient=intake_fpr,
                signer="bench",
            )
            with runtime.session_factory() as session:
                tip_id = (
                    TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
                    .receive(agency, body)
                    .tip.id
                )
            tasks.process_tip(runtime.job_context(), tip_id)
            real.append(tip_id)

        app = create_app(runtime=runtime)
        client = signed_in_client(app, runtime, analyst)

        def get(url: str) -> Callable[[], object]:
            def call() -> object:
                response = client.get(url)
                if response.status_code != 200:
                    raise SystemExit(f"{url} answered {response.status_code}")
                return response

            return call

        baseline = timed(options.requests, get("/"))
        report("trivial endpoint (home page)", baseline, baseline, "-")

        with runtime.session_factory() as session:
            deep = session.execute(
                sa.text(
                    "SELECT priority, sla_due_at, id FROM tips WHERE team_id = :team "
                    "AND status = 'in_triage' AND priority IS NOT NULL "
                    "ORDER BY priority, sla_due_at, id OFFSET 10000 LIMIT 1"
                ),
                {"team": team_ids[0]},
            ).one_or_none()
            if deep is None:  # a small run: the middle of the queue
                deep = session.execute(
                    sa.text(
                        "SELECT priority, sla_due_at, id FROM tips WHERE team_id = :team "
                        "AND status = 'in_triage' ORDER BY priority, sla_due_at, id "
                        "OFFSET (SELECT count(*) / 2 FROM tips WHERE team_id = :team "
                        "AND status = 'in_triage') LIMIT 1"
                    ),
                    {"team": team_ids[0]},
                ).one()
        after = quote(f"{deep.priority}~{deep.sla_due_at.isoformat()}~{deep.id}")
        filters = "priority=P2&has_matches=y&assigned=unassigned"
        for name, url in (
            ("queue, first page", "/desk"),
            ("queue, first page, filtered", f"/desk?{filters}"),
            ("queue, deep keyset page", f"/desk?after={after}"),
            ("queue, deep keyset page, filtered", f"/desk?{filters}&after={after}"),
        ):
            report(name, timed(options.requests, get(url)), baseline, "p95 < 50 ms")

        opened = timed(options.requests, lambda: [get(f"/desk/tips/{t}")() for t in real[:1]])
        report("opening a tip (decrypted, audited)", opened, baseline, "p50 < 100 ms")

        # Correlating a new tip: 3 values, each already held by some tip, against everything.
        with runtime.session_factory() as session:
            samples = session.execute(
                sa.text(
                    "SELECT s.blind_index, s.selector_type FROM tip_selectors AS s "
                    "JOIN tips ON tips.id = s.tip_id WHERE tips.tracking_number LIKE 'TB%' "
                    "ORDER BY s.id DESC LIMIT :n"
                ),
                {"n": 3 * (options.requests + 10)},
            ).all()
        new_tip = real[-1]
        trials = iter(range(options.requests + 10))

        def correlate() -> float:
            """One tip's registration, timed inside a transaction already open (as processing
            calls it); the transaction is rolled back, so every trial meets the same data."""
            n = next(trials)
            chosen = {row.blind_index: row.selector_type for row in samples[3 * n : 3 * n + 3]}
            with runtime.session_factory() as session:
                session.execute(sa.text("SELECT 1"))
                started = time.perf_counter()
                Correlator(session, clock=runtime.clock).register(new_tip, chosen, cap=50)
                lap = (time.perf_counter() - started) * 1000
                session.rollback()
            return lap

        for _ in range(5):
            correlate()  # warm, as timed() does
        laps = [correlate() for _ in range(options.requests)]
        report("correlating a new tip (3 selectors)", laps, baseline, "< 10 ms")

        # The lead's dashboard: the team's quarter of the referrals, tips and operations.
        lead_client = signed_in_client(app, runtime, lead)

        def dashboard() -> object:
            response = lead_client.get("/dashboard")
            if response.status_code != 200:
                raise SystemExit(f"/dashboard answered {response.status_code}")
            return response

        report("the lead's dashboard", timed(options.requests, dashboard), baseline,
               "p95 < 200 ms")  # fmt: skip

        # What the page reads is computed by the workers every minute: its cost, per team.
        from referrals.casework.dashboard import LeadDashboard

        def refresh() -> float:
            with runtime.session_factory() as session:
                started = time.perf_counter()
                LeadDashboard(session, clock=runtime.clock).refresh(team_ids[0])
                return (time.perf_counter() - started) * 1000

        computing = [refresh() for _ in range(20)]
        report("computing a team's dashboard (workers, 1/min)", computing, baseline, "-")
    finally:
        if runtime is not None:
            runtime.close()
        partner.close()
        subprocess.run(["gpgconf", "--homedir", str(scratch / "home" / "gnupg"), "--kill", "all"],
                       check=False, capture_output=True)  # fmt: skip
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
