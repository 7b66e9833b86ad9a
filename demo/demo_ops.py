"""The operations part of the demo: what hospital IT and a model's CI pipeline see.

1. The ML bill of materials of the version in production (CycloneDX): its artifact digest,
   the dataset version it was trained on, the converter and runtime, who signed.
2. The CI gate on the same version (what a model repository's pipeline runs) passes, and it
   fails on a policy the version cannot meet, naming the check.
3. A backup of the whole installation (database and encrypted blob and dataset stores) to a
   folder, verified; a second backup copies nothing new; the backup restored onto an empty
   machine (the keys brought from escrow) gives the same audit chain heads and checkpoint,
   and the restored audit trail verifies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from medops.backup.service import create_backup, restore_backup, verify_backup
from medops.client import Client
from medops.config import Settings
from medops.registry.cigate import judge

console = Console(width=160)
NAME = "diabetes-risk"


def ops_demo(settings: Settings, login: Callable[[Client, str], None], folder: Path) -> list[str]:
    """Run the operations story; returns the outcomes that differ from what should happen."""
    problems: list[str] = []
    console.rule("operations: ML bill of materials, CI gate, backup and restore")
    with Client(settings=settings) as engineer:
        login(engineer, "ml-engineer")
        version = engineer.get_version(f"{NAME}@production")
        ref = f"{version.model}/{version.version}"
        sbom = engineer.sbom(ref)
        components = sbom.get("components", [])
        model = sbom.get("metadata", {}).get("component")  # the subject of the BOM
        if model is None or model.get("type") != "machine-learning-model":
            problems.append("the ML-BOM has no machine-learning-model component")
        else:
            digest = next(iter(model.get("hashes", [])), {}).get("content", "")
            console.print(
                f"ML-BOM of {ref} (CycloneDX {sbom.get('specVersion')}): model artifact "
                f"sha256 {digest[:12]}…, {len(components)} components "
                f"(training data, converter, runtime), "
                f"{len(sbom.get('annotations', []))} signatures"
            )
        gates = engineer.gates(ref, "production")
        report = engineer.report(ref)
        card = engineer.card(ref)
        verdict = judge(version, gates, report, list(card["completeness"]["missing"]))
        table = Table(title=f"medops ci gate {ref}: {'passed' if verdict.passed else 'failed'}")
        for column in ("check", "verdict", "detail"):
            table.add_column(column)
        for check in verdict.checks:
            table.add_row(check.name, check.status, check.detail)
        console.print(table)
        if not verdict.passed:
            problems.append(f"the CI gate failed on {ref}, which is in production")

    backups = folder / "backups"
    first = create_backup(settings, targets=[str(backups)])
    (target,) = first.targets
    console.print(
        f"backup {first.id}: database {first.database_bytes:,} bytes and {first.objects} "
        f"stored objects ({first.object_bytes:,} bytes, still encrypted) to {backups}, "
        f"{target.copied} copied; 3-2-1 rule: {first.rule.reason}"
    )
    checked = verify_backup(settings, first.id, source=str(backups))
    if not checked.ok:
        problems.append(f"backup {first.id} does not verify: {checked.problems}")
    second = create_backup(settings, targets=[str(backups)])
    (again,) = second.targets
    console.print(
        f"second backup {second.id}: {again.copied} objects copied, {again.reused} reused "
        "(content-addressed: only what changed is copied)"
    )
    if again.reused < first.objects:
        problems.append("the second backup copied objects the first had already copied")

    restored_home = folder / "restored-home"
    restored_home.mkdir(mode=0o700)
    for key in sorted(settings.home.glob("*.key")):  # the keys come from escrow, not the backup
        (restored_home / key.name).write_bytes(key.read_bytes())
        (restored_home / key.name).chmod(0o600)
    restored = restore_backup(Settings(home=restored_home), second.id, source=str(backups))
    console.print(
        f"restored {second.id} onto an empty machine ({restored_home}) in "
        f"{restored.seconds:.1f} s: {restored.audit_records} audit records, chain heads "
        f"match: {restored.chain_heads_match}, checkpoint matches: "
        f"{restored.checkpoint_matches}, audit trail verifies: {restored.audit_verified}"
    )
    if not (restored.chain_heads_match and restored.checkpoint_matches and restored.audit_verified):
        problems.append(f"the restored installation differs: {restored.audit_problem}")
    return problems
