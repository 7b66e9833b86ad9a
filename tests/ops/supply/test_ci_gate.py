"""`medops ci gate` passes a version that meets its gates (signatures pending until people
sign) and fails, exit 1, naming the gate, one that misses one; `medops models sbom` writes
the same CycloneDX document it prints."""

from __future__ import annotations

import json
from pathlib import Path

from cyclonedx.schema import OutputFormat, SchemaVersion
from cyclonedx.validation import make_schemabased_validator

from medops.registry.cigate import CiGateResult
from tests.helpers import model_data
from tests.helpers.cli import MODEL, approve_version, log_in, ready_version, setup_people_and_files
from tests.helpers.cli_runner import Cli


def test_the_gate_passes_a_good_version_and_fails_one_that_misses_a_gate(
    cli: Cli, tmp_path: Path
) -> None:
    """A validated, carded version passes (exit 0; signatures pending, or required and
    failing with --require-approvals until two people sign); after the policy is tightened
    past its report, the same version fails with exit 1 naming the validation report, in the
    table, the JSON and the pull-request comment."""
    files = setup_people_and_files(cli, tmp_path)
    files["policy"] = tmp_path / "policy.json"
    files["policy"].write_text(json.dumps(model_data.POLICY))
    log_in(cli, "eli")
    cli.ok("models", "create", MODEL, "--policy", str(files["policy"]))
    version = ready_version(cli, files, 1.0)
    ref = f"{MODEL}/{version}"
    comment = tmp_path / "gate.md"

    good = CiGateResult.model_validate(
        cli.ok("ci", "gate", ref, "--json", "--markdown", str(comment)).json()
    )
    assert good.passed
    verdicts = {c.name: c.status for c in good.checks}
    assert verdicts["artifact"] == verdicts["parity"] == "pass"
    assert verdicts["validation report"] == verdicts["model card"] == "pass"
    assert verdicts["approvals (clinician)"] == "pending"
    assert "passed" in comment.read_text()
    table = cli.ok("ci", "gate", ref)
    assert "passed" in table.out

    unsigned = cli("ci", "gate", ref, "--require-approvals", "--json")
    assert unsigned.code == 1
    assert "approvals (clinician)" in {c.name for c in CiGateResult(**unsigned.json()).failed}
    approve_version(cli, version)
    assert cli("ci", "gate", ref, "--require-approvals").code == 0

    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps(model_data.POLICY | {"min_auroc": 0.99}))
    log_in(cli, "eli")
    cli.ok("models", "policy", MODEL, "--set", str(strict))
    failed = cli("ci", "gate", ref, "--json", "--markdown", str(comment))
    assert failed.code == 1
    result = CiGateResult.model_validate(failed.json())
    assert not result.passed
    assert [c.name for c in result.failed] == ["validation report"]
    assert "AUROC" in result.failed[0].detail
    assert "FAILED" in comment.read_text()
    assert "❌ fail" in comment.read_text()
    shown = cli("ci", "gate", ref)
    assert shown.code == 1
    assert "failed: validation report" in shown.out


def test_models_sbom_prints_and_writes_the_same_valid_document(cli: Cli, tmp_path: Path) -> None:
    """`medops models sbom REF --json --output FILE` prints the CycloneDX document and writes
    the same one, which validates; without --json a short table names the artifact."""
    files = setup_people_and_files(cli, tmp_path)
    log_in(cli, "eli")
    cli.ok("models", "create", MODEL)
    version = ready_version(cli, files, 1.0)
    written = tmp_path / "mlbom.cdx.json"
    printed = cli.ok("models", "sbom", f"{MODEL}/{version}", "--json", "--output", str(written))
    assert json.loads(written.read_text()) == printed.json()
    validator = make_schemabased_validator(OutputFormat.JSON, SchemaVersion.V1_6)
    assert validator.validate_str(written.read_text()) is None
    table = cli.ok("models", "sbom", MODEL)
    assert "artifact sha256" in table.out
    digest = printed.json()["metadata"]["component"]["hashes"][0]["content"]
    assert digest in table.out
