"""The CI gate of a model version (``medops ci gate``): may this commit's version go on?

A model repository's pipeline registers the version its commit trains, validates it, and
asks here whether it passes what the registry will demand before the version may serve: the
promotion gates of the model's policy for an alias (``production`` by default), as
``LifecycleService.gates`` checks them — the artifact is stored and matches its SHA-256,
ONNX parity with the native model was measured within tolerance, the latest validation
report passes the policy's thresholds and subgroup gaps, the model card is complete. The
electronic signatures the policy requires come after CI, from people: they are shown as
``pending`` and fail the gate only with ``require_approvals`` (for a pipeline that promotes).

Pure: ``judge`` takes what the registry returned; ``to_markdown`` writes the pull-request
comment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from medops.registry.schemas import GateResult, ReportSummary, VersionOut

Status = Literal["pass", "fail", "pending"]


class CiCheck(BaseModel):
    """One line of the gate: what was checked, its verdict and why."""

    name: str
    status: Status
    detail: str


class CiGateResult(BaseModel):
    """The verdict of the CI gate on one version; ``passed`` is False when any check fails."""

    model: str
    version: int
    alias: str
    artifact_digest: str
    passed: bool
    checks: list[CiCheck]

    @property
    def failed(self) -> list[CiCheck]:
        """The checks that failed."""
        return [c for c in self.checks if c.status == "fail"]


def judge(
    version: VersionOut,
    gates: GateResult,
    report: ReportSummary | None,
    card_missing: list[str],
    *,
    require_approvals: bool = False,
) -> CiGateResult:
    """The gate's checks, from the version, its gates for an alias, its latest report and
    what its card lacks."""
    checks: list[CiCheck] = []

    def add(name: str, ok: bool, passed: str, failed: str) -> None:
        checks.append(
            CiCheck(name=name, status="pass" if ok else "fail", detail=passed if ok else failed)
        )

    add(
        "artifact",
        gates.checks.get("artifact", True),
        f"stored, sha256 {version.artifact_digest[:12]} verified",
        "the stored ONNX file is missing or fails its SHA-256 check",
    )
    parity = version.parity
    add(
        "parity",
        gates.checks.get("parity", True)
        and (parity is None or parity.max_abs_diff <= parity.tolerance),
        f"max |ONNX - native| {parity.max_abs_diff:.3g} <= {parity.tolerance:g} "
        f"on {parity.rows} rows"
        if parity
        else "not required by the policy",
        "no parity check against the native model (register with a --sample)",
    )
    if report is None:
        add("validation report", False, "", "none: run 'medops models validate' first")
    else:
        add(
            "validation report",
            gates.checks.get("validation_report", report.passed),
            f"{report.id} passes the policy ({report.dataset_rows} rows of {report.dataset_name})",
            f"{report.id}: "
            + (
                "; ".join(
                    u.removeprefix(f"validation report {report.id}: ")
                    for u in gates.unmet
                    if u.startswith("validation report")
                )
                or "; ".join(report.failures)
            ),
        )
    add(
        "model card",
        gates.checks.get("model_card", not card_missing),
        "complete" if not card_missing else "incomplete, not required by the policy",
        "incomplete: missing " + ", ".join(card_missing),
    )
    for name, ok in sorted(gates.checks.items()):
        if not name.startswith("approvals."):
            continue
        role = name.removeprefix("approvals.")
        if ok:
            checks.append(CiCheck(name=f"approvals ({role})", status="pass", detail="signed"))
        else:
            missing = next((u for u in gates.unmet if u.endswith(f"{role} approval(s)")), "missing")
            checks.append(
                CiCheck(
                    name=f"approvals ({role})",
                    status="fail" if require_approvals else "pending",
                    detail=missing.removeprefix("approvals: ")
                    + ("" if require_approvals else " (people sign after CI)"),
                )
            )
    return CiGateResult(
        model=version.model,
        version=version.version,
        alias=gates.alias,
        artifact_digest=version.artifact_digest,
        passed=not any(c.status == "fail" for c in checks),
        checks=checks,
    )


_MARK = {"pass": "✅ pass", "fail": "❌ fail", "pending": "⏳ pending"}  # nosec B105 - verdict labels


def _cell(text: str) -> str:
    """Text inside a Markdown table cell: one line, no pipes, no HTML."""
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")


def to_markdown(result: CiGateResult) -> str:
    """The gate as a pull-request comment."""
    verdict = "passed" if result.passed else "FAILED"
    lines = [
        f"### medops CI gate: {result.model}/{result.version} {verdict}",
        "",
        f"Gates for `@{result.alias}`; artifact sha256 `{result.artifact_digest}`.",
        "",
        "| check | verdict | detail |",
        "|---|---|---|",
        *(f"| {c.name} | {_MARK[c.status]} | {_cell(c.detail)} |" for c in result.checks),
        "",
    ]
    if not result.passed:
        failed = ", ".join(c.name for c in result.failed)
        lines.append(f"Failed: {failed}. Fix these and push again; nothing was promoted.")
    else:
        lines.append(
            "Every automatic gate passes; the signatures the policy requires come next "
            f"('medops models approve {result.model}/{result.version}')."
        )
    return "\n".join(lines) + "\n"
