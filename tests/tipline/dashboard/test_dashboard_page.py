"""The lead's dashboard page: charts drawn as SVG with their numbers beside them, and each
table as CSV."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from referrals.operations.models import Operation
from tests.tipline.admin.people import audit_records, csrf
from tests.tipline.casework.test_referral_pages import Browser, unit_id
from tests.tipline.desk.conftest import SendTip
from tests.tipline.operations.test_operation_pages import step, with_the_unit
from tipline.runtime import Runtime


def test_a_lead_reads_the_team_s_figures_as_charts_tables_and_csv(
    browser: Browser, send_tip: SendTip, runtime: Runtime
) -> None:
    first, second = with_the_unit(browser, send_tip, runtime, 2)
    lea = browser("lea")
    form = lea.get("/operations/new").get_data(as_text=True)
    lea.post(
        "/operations/new",
        data={"csrf_token": csrf(form), "referral": [str(first), str(second)],
              "lead_unit": unit_id(runtime, "Luzon child protection unit"),
              "planned_for": "2026-12-10", "region": "=HYPERLINK(\"x\")"},
    )  # fmt: skip
    with runtime.session_factory() as session:
        operation_id = session.scalars(select(Operation.id)).one()
    step(lea, operation_id, "approve")
    step(lea, operation_id, "conduct")
    step(lea, operation_id, "debrief", outcome_for=[str(first), str(second)],
         **{f"children-{first}": "4", f"suspects-{first}": "1",
            f"children-{second}": "1", f"suspects-{second}": "1"})  # fmt: skip

    page = lea.get("/dashboard").get_data(as_text=True)

    assert (
        '<svg class="chart" id="funnel-chart" role="img" aria-labelledby="funnel-chart-title"'
        in page
    )
    assert (
        '<title id="months-chart-title">Children safeguarded in each of the last twelve '
        "months</title>" in page
    )
    assert "<script" not in page
    assert '<th scope="row">Children safeguarded</th><td>5</td>' in page
    assert '<th scope="row">=HYPERLINK(&#34;x&#34;), PH</th><td>1</td><td>5</td><td>2</td>' in page
    regions = lea.get("/dashboard/regions.csv").get_data(as_text=True).splitlines()
    # A spreadsheet would run a cell starting with "=": it is written inert.
    assert regions[1] == '"\'=HYPERLINK(""x""), PH",1,5,2'
    assert 'href="/dashboard/funnel.csv"' in page

    answer = lea.get("/dashboard/funnel.csv")
    assert answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"].startswith('attachment; filename="funnel-')
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows == [
        ["step", "count"],
        ["Tips routed to the team", "2"],
        ["Referrals", "2"],
        ["Operations conducted", "1"],
        ["Children safeguarded", "5"],
        ["Children in aftercare", "0"],
    ]
    exports = audit_records(runtime, "dashboard.exported")
    assert sorted(record.details["chart"] for record in exports) == ["funnel", "regions"]
    assert lea.get("/dashboard/nothing.csv").status_code == 404
    assert browser("ana").get("/dashboard").status_code == 403
