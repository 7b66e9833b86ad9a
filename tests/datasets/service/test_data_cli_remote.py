"""The issue's done-when through the CLI: a 1,000-slice DICOM series and a table go through
``medops data add --deidentify``, ``push`` to an S3 server (moto_server on the loopback),
``pull`` and ``checkout`` on a fresh home with the same KEK and remote, and ``verify``; bad
input and refusals are one line."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pydicom

from tests.helpers.cli import USER_PW, assert_one_line_error, init_with_people, log_in
from tests.helpers.cli_runner import Cli, clean_env
from tests.helpers.dicom import ct_series
from tests.helpers.s3 import MotoServer

KEK = "k1:" + base64.b64encode(bytes(range(32))).decode()
SLICES = 1000
PEOPLE = [("dana", "data_scientist", "Dana Data"), ("clio", "clinician", "Clio Clin")]


def _home(tmp_path: Path, name: str, db_url: str, s3: MotoServer, bucket: str) -> Cli:
    return Cli(
        clean_env(
            MEDOPS_HOME=str(tmp_path / name),
            MEDOPS_DATABASE_URL=db_url,
            MEDOPS_DATA_KEK=KEK,
            MEDOPS_DATA_REMOTE=f"s3://{bucket}/medops",
            MEDOPS_DATA_S3_ENDPOINT_URL=s3.endpoint,
            **s3.env,
        )
    )


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_add_push_pull_checkout_verify_elsewhere(
    tmp_path: Path, empty_db_url: str, s3_env: MotoServer
) -> None:
    """Add with --deidentify, push to S3, then on a fresh home (fresh database, same KEK and
    remote) pull, check out the exact bytes and verify them."""
    bucket = s3_env.bucket()
    first = _home(tmp_path, "a", empty_db_url, s3_env, bucket)
    init_with_people(first, PEOPLE)
    log_in(first, "dana")
    source = tmp_path / "src"
    (source / "ct").mkdir(parents=True)
    for number, data in enumerate(ct_series(SLICES), 1):
        (source / "ct" / f"{number:04d}.dcm").write_bytes(data)
    (source / "labs.csv").write_text("age,glucose\n41,5.2\n57,6.1\n")
    added = first.ok(
        "data",
        "add",
        "chest",
        str(source),
        "--deidentify",
        "--retain-dates",
        "modified",
        "-m",
        "baseline",
        "--json",
    ).json()
    assert added["version"]["file_count"] == SLICES + 1
    assert first.ok(
        "data", "add", "chest", str(source), "--deidentify", "--retain-dates", "modified", "--json"
    ).json()["unchanged"]
    assert "chest@1" in first.ok("data", "list", "chest").out
    pushed = first.ok("data", "push", "chest@1", "--json").json()
    assert pushed["objects"] >= 2
    mine = tmp_path / "mine"
    first.ok("data", "checkout", "chest@1", str(mine), "--purpose", "reference copy")

    second = _home(tmp_path, "b", f"sqlite:///{tmp_path / 'b.db'}", s3_env, bucket)
    init_with_people(second, PEOPLE)
    log_in(second, "dana")
    pulled = second.ok("data", "pull", "chest@1", "--json").json()
    assert pulled["objects"] == pushed["objects"]
    theirs = tmp_path / "theirs"
    second.ok("data", "checkout", "chest@1", str(theirs), "--purpose", "training elsewhere")
    assert _digests(theirs) == _digests(mine)
    assert pydicom.dcmread(theirs / "ct" / "0001.dcm").PatientIdentityRemoved == "YES"
    assert second.ok("data", "verify", "chest@1", "--json").json()["ok"]
    [series] = second.ok("data", "show", "chest@1", "--json").json()["series"]
    assert series["slices"] == SLICES
    assert (
        second.ok("data", "show", "chest@1", "--json").json()["version"]["root"]
        == (added["version"]["root"])
    )
    assert_one_line_error(second("data", "show", "chest@9"), "no dataset version")
    log_in(second, "clio", USER_PW)
    assert_one_line_error(second("data", "list"), "data:read")
