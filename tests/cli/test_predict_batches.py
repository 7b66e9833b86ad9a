"""`medops predict --input big.csv --output results.csv`: a file larger than one request goes
to the server in batches within the limits the server states, every row's result is written
(ids in full), bad rows fail alone and the scored rows are kept, a progress bar shows on an
interactive terminal only; tables never cut an id; outcomes upload matched by patient. The
CLI runs on the embedded app over the database the HTTP fixtures deployed, as a clinician."""

from __future__ import annotations

import csv
import json
import os
import pty
import re
import stat
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from medops.config import Settings
from medops.core.onnx_model import OnnxModel
from medops.services import Services
from medops.serving.tables import Prediction
from medops.testing import FixedClock
from tests.helpers import model_data
from tests.helpers.cli_runner import MEDOPS, Cli, Result, clean_env
from tests.helpers.registry import DEPLOYMENT, FEATURES, random_records

ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def clock() -> FixedClock:
    """The fixtures' clock starts at the real time, so the tokens they issue are good for
    the CLI's server, which runs on the system clock."""
    return FixedClock(datetime.now(UTC))


@pytest.fixture
def clinician(settings: Settings, deployed: dict[str, dict[str, str]]) -> Cli:
    """The CLI of a clinician (an API token) on the installation where ``diabetes`` serves."""
    token = deployed["clin"]["Authorization"].removeprefix("Bearer ")
    return Cli(
        clean_env(
            MEDOPS_HOME=str(settings.home),
            MEDOPS_DATABASE_URL=str(settings.database_url),
            MEDOPS_TOKEN=token,
            MEDOPS_MONITOR_INTERVAL_SECONDS="0",
        )
    )


def _write_csv(path: Path, records: list[dict[str, Any]], refs: list[str]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_ref", *FEATURES])
        for ref, record in zip(refs, records, strict=True):
            writer.writerow([ref, *(record[f] for f in FEATURES)])
    return path


def _direct(records: list[dict[str, Any]]) -> np.ndarray:
    """Positive-class probabilities straight from ONNX Runtime."""
    pkg = model_data.package(1.0)
    model = OnnxModel(pkg.onnx, pkg.signature)
    return model.positive_scores({f: [r[f] for r in records] for f in FEATURES})


def _logged(services: Services) -> set[str]:
    with services.db.session() as session:
        return set(session.scalars(select(Prediction.id)))


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _one_error_line(result: Result, *fragments: str, logs: bool = False) -> str:
    """Exit 1 with one error line on stderr (and, with ``logs``, the embedded server's JSON
    log lines besides it)."""
    lines = result.err.strip().splitlines()
    if logs:
        lines = [line for line in lines if not line.startswith("{")]
    assert result.code == 1, (result.code, result.err)
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_a_csv_larger_than_one_request_goes_in_batches_to_a_results_file(
    clinician: Cli, services: Services, tmp_path: Path
) -> None:
    """2,500 rows (the server takes 1,000 per request) are scored in 3 requests, each row's
    result written in input order with its full prediction id, label, score equal to ONNX
    Runtime's, version and arm; the file is 0600; the summary prints counts and nothing goes
    to stderr off a terminal. The batch size follows the server's stated limit (300: 9
    requests), and .jsonl holds the probabilities too."""
    records = random_records(2500, seed=11)
    refs = [f"pt-{i}" for i in range(2500)]
    big = _write_csv(tmp_path / "big.csv", records, refs)
    out = tmp_path / "results.csv"
    result = clinician.ok("predict", DEPLOYMENT, "--input", str(big), "--output", str(out))
    assert result.err == ""
    assert "2,500 of 2,500 rows scored by diabetes in 3 request(s)" in result.out
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    rows = _rows(out)
    assert [int(r["row"]) for r in rows] == list(range(1, 2501))
    assert [int(r["line"]) for r in rows] == list(range(2, 2502))
    assert [r["patient_ref"] for r in rows] == refs
    assert {(r["status"], r["version"], r["arm"], r["error"]) for r in rows} == {
        ("ok", "1", "primary", "")
    }
    ids = [r["prediction_id"] for r in rows]
    assert all(ID.match(i) for i in ids)
    assert len(set(ids)) == 2500
    assert set(ids) == _logged(services)
    scores = np.array([float(r["score"]) for r in rows])
    assert np.max(np.abs(scores - _direct(records))) <= 1e-6
    assert {r["label"] for r in rows} <= {"0", "1"}

    jsonl = tmp_path / "results.jsonl"
    summary = clinician.ok(
        "predict",
        DEPLOYMENT,
        "--input",
        str(big),
        "--output",
        str(jsonl),
        "--json",
        MEDOPS_SERVING_MAX_RECORDS="300",
    ).json()
    assert (summary["rows"], summary["succeeded"], summary["failed"]) == (2500, 2500, 0)
    assert (summary["requests"], summary["format"], summary["served"]) == (
        9,
        "jsonl",
        {"v1 primary": 2500},
    )
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["row"] for line in lines] == list(range(1, 2501))
    assert all(set(line["probabilities"]) == {"0", "1"} for line in lines)
    assert len(_logged(services)) == 5000


def test_bad_rows_fail_alone_and_the_rows_scored_are_kept_flagged(
    clinician: Cli, services: Services, tmp_path: Path
) -> None:
    """A ragged row, an age out of range and a bmi that is not a number fail on their own:
    the other 2,497 rows (also those in the refused batches) are scored once each and
    written; the failed rows are flagged in the file with the reason, listed by row and
    line, and the command exits 1 with one error line."""
    records = random_records(2500, seed=12)
    refs = [f"pt-{i}" for i in range(2500)]
    big = _write_csv(tmp_path / "big.csv", records, refs)
    lines = big.read_text().splitlines(keepends=True)
    lines[40] = lines[40].rstrip("\n") + ",7\n"  # row 40: one cell too many
    lines[1503] = re.sub(r"^(pt-1502),[^,]+,", r"\1,200,", lines[1503])  # row 1503: age 200
    cells = lines[2100].split(",")
    cells[3] = "abc"  # row 2100: bmi
    lines[2100] = ",".join(cells)
    big.write_text("".join(lines))
    out = tmp_path / "results.csv"
    result = clinician("predict", DEPLOYMENT, "--input", str(big), "--output", str(out))
    _one_error_line(result, "3 of 2,500 rows were not scored", str(out))
    assert "2,497 of 2,500 rows scored" in result.out
    for row, why in ((40, "more cells"), (1503, "features.age"), (2100, "features.bmi")):
        assert re.search(rf"│ {row}\s+│ {row + 1}\s+│ {why}", result.out), result.out
    rows = _rows(out)
    assert len(rows) == 2500
    failed = {int(r["row"]): r for r in rows if r["status"] != "ok"}
    assert set(failed) == {40, 1503, 2100}
    assert {r["status"] for r in failed.values()} == {"failed"}
    assert "more cells than the header" in failed[40]["error"]
    assert "features.age" in failed[1503]["error"]
    assert "features.bmi" in failed[2100]["error"]
    assert all(r["prediction_id"] == "" for r in failed.values())
    scored = [r["prediction_id"] for r in rows if r["status"] == "ok"]
    assert len(scored) == 2497
    assert all(ID.match(i) for i in scored)
    assert set(scored) == _logged(services)  # none lost, none scored twice


def test_lines_that_are_not_utf8_or_not_csv_fail_alone(
    clinician: Cli, services: Services, tmp_path: Path
) -> None:
    """A line with a byte that is not UTF-8 (line 1,201) and one the CSV reader cannot read
    (a stray carriage return, line 1,301) fail as their rows; the rows before and after
    them are scored."""
    big = _write_csv(
        tmp_path / "big.csv", random_records(1500, seed=13), [f"pt-{i}" for i in range(1500)]
    )
    lines = big.read_bytes().splitlines(keepends=True)
    lines[1200] = lines[1200].replace(b"pt-", b"pt-\xff", 1)
    lines[1300] = lines[1300].replace(b",", b"\r,", 1)
    big.write_bytes(b"".join(lines))
    out = tmp_path / "results.csv"
    result = clinician("predict", DEPLOYMENT, "--input", str(big), "--output", str(out))
    _one_error_line(result, "2 of 1,500 rows were not scored")
    rows = _rows(out)
    assert len(rows) == 1500
    failed = {int(r["line"]): r["error"] for r in rows if r["status"] != "ok"}
    assert failed.keys() == {1201, 1301}
    assert failed[1201] == "not UTF-8 text"
    assert failed[1301].startswith("not readable CSV")
    assert len(_logged(services)) == 1498


def test_a_server_that_keeps_shedding_stops_the_run_and_every_row_says_so(
    clinician: Cli, services: Services, tmp_path: Path
) -> None:
    """A batch the server sheds for load (503 overloaded) is sent again after Retry-After;
    still shed after 5 retries, the run stops: every row is written as not-sent with why,
    nothing is scored, the exit status is 1."""
    big = _write_csv(
        tmp_path / "big.csv", random_records(1200, seed=17), [f"p{i}" for i in range(1200)]
    )
    out = tmp_path / "results.csv"
    result = clinician(
        "predict",
        DEPLOYMENT,
        "--input",
        str(big),
        "--output",
        str(out),
        MEDOPS_SERVING_DEADLINE_MS="1",  # under the batching delay: every request is shed
    )
    _one_error_line(result, "the run stopped", "overloaded after 5 retries", logs=True)
    assert "0 of 1,200 rows scored by diabetes in 6 request(s)" in result.out
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["not-sent"] * 1200
    assert "overloaded" in rows[0]["error"]
    assert "the run stopped earlier" in rows[-1]["error"]
    assert _logged(services) == set()


def test_without_output_an_input_over_the_limit_is_refused_naming_output(
    clinician: Cli, services: Services, tmp_path: Path
) -> None:
    """Without --output, an input larger than one request is refused on one line that says
    to give --output, and nothing is scored."""
    big = _write_csv(
        tmp_path / "big.csv", random_records(1001, seed=14), [f"p{i}" for i in range(1001)]
    )
    result = clinician("predict", DEPLOYMENT, "--input", str(big))
    assert result.out == ""
    _one_error_line(result, "1,001 records", "at most 1,000 per request", "--output")
    assert _logged(services) == set()


def _run_on_a_terminal(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run the medops console script with stderr on a pseudo-terminal; (code, out, err)."""
    leader, follower = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            [MEDOPS, *args],
            stdout=subprocess.PIPE,
            stderr=follower,
            stdin=subprocess.DEVNULL,
            env=env | {"TERM": "xterm-256color"},
            timeout=300,
            check=False,
        )
    finally:
        os.close(follower)
        reader.join(timeout=10)
        os.close(leader)
    return proc.returncode, proc.stdout.decode(), b"".join(chunks).decode(errors="replace")


def test_a_progress_bar_shows_on_an_interactive_terminal_only(
    clinician: Cli, tmp_path: Path
) -> None:
    """On a terminal, stderr shows a progress bar (the deployment, rows done); with --json
    nothing is drawn there and stdout is the JSON summary alone."""
    big = _write_csv(
        tmp_path / "big.csv", random_records(1500, seed=15), [f"p{i}" for i in range(1500)]
    )
    args = ("predict", DEPLOYMENT, "--input", str(big), "--output")
    code, out, err = _run_on_a_terminal(clinician.env, *args, str(tmp_path / "a.csv"))
    assert code == 0, err
    assert "predict diabetes" in err
    assert "1,500 rows, 0 failed" in err
    assert "━" in err  # the bar
    assert "1,500 of 1,500 rows scored" in out
    code, out, err = _run_on_a_terminal(clinician.env, *args, str(tmp_path / "b.csv"), "--json")
    assert code == 0, err
    assert err == ""
    assert json.loads(out)["succeeded"] == 1500


def test_ids_are_never_cut_in_tables_and_outcomes_match_by_patient(
    clinician: Cli, services: Services, tmp_path: Path
) -> None:
    """On an 80-column terminal the predict table prints every prediction id in full (they
    are the logged ones, and outcomes attach to them); `outcomes upload --deployment`
    matches rows by patient reference and time."""
    small = _write_csv(tmp_path / "small.csv", random_records(3, seed=16), ["pt-a", "pt-b", "pt-c"])
    table = clinician.ok("predict", DEPLOYMENT, "--input", str(small), COLUMNS="80").out
    assert "…" not in table
    shown = re.findall(r"\b[0-9a-f]{32}\b", table)
    assert len(shown) == 3
    assert set(shown) == _logged(services)
    assert all(ref in table for ref in ("pt-a", "pt-b", "pt-c"))

    now = datetime.now(UTC).isoformat()
    by_id = tmp_path / "by-id.csv"
    by_id.write_text(f"prediction_id,label\n{shown[0]},1\n")
    assert clinician.ok("outcomes", "upload", str(by_id), "--json").json()["created"] == 1
    by_patient = tmp_path / "by-patient.csv"
    by_patient.write_text(f"patient_ref,observed_at,label\npt-b,{now},0\npt-c,{now},1\n")
    uploaded = clinician.ok(
        "outcomes", "upload", str(by_patient), "--deployment", DEPLOYMENT, "--json"
    ).json()
    assert uploaded == {"rows": 2, "created": 2, "unchanged": 0, "matched": 2}
    refused = clinician("outcomes", "upload", str(by_patient), "--lookback-days", "1")
    _one_error_line(refused, "rows[0].deployment")


def test_predict_options_that_cannot_work_fail_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    """--output with an unknown format, onto the input itself, or with --fhir fails on one
    line without contacting a server (none exists here)."""
    cli = Cli(clean_env(MEDOPS_HOME=str(tmp_path / "home")))
    data = _write_csv(tmp_path / "in.csv", random_records(2), ["p1", "p2"])
    cases = [
        (("--output", str(tmp_path / "out.txt")), "name a .csv or .jsonl file"),
        (("--output", str(data)), "--output names the input file"),
        (("--output", str(tmp_path / "out.csv"), "--fhir"), "--fhir prints one answer"),
    ]
    for extra, fragment in cases:
        result = cli("predict", DEPLOYMENT, "--input", str(data), *extra)
        assert result.out == ""
        _one_error_line(result, fragment)
    assert not (tmp_path / "out.csv").exists()
