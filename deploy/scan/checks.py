"""The verdicts of deploy/scan/scan.sh, one subcommand per step; each prints one line.

    checks.py secrets BASELINE FRESH    every finding of FRESH is in BASELINE, audited
    checks.py update BASELINE FRESH     BASELINE := FRESH, keeping each known entry's audit
    checks.py bandit REPORT EXIT        bandit's JSON report has no finding
    checks.py audit REPORT EXIT LOG SERVICE TEXT   pip-audit audited every pin, found nothing
    checks.py sbom FILE                 a CycloneDX 1.6 JSON document that validates

Exit 0: passed; 1: found something; 2: the tool failed; 3 (audit only): the audit could not
be done (the service was unreachable or did not know a pinned version).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def say(line: str) -> None:
    """The step's one line, for scan.sh's summary."""
    sys.stdout.write(line + "\n")


Key = tuple[str, str, str]  # file, detector, hashed secret (lines move; these do not)


def _findings(document: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    found = {}
    for filename, entries in document.get("results", {}).items():
        for entry in entries:
            found[(filename, entry["type"], entry["hashed_secret"])] = entry
    return found


def secrets(baseline_path: str, fresh_path: str) -> int:
    """New findings fail; so does a baseline entry not audited as a false positive with a
    reason (``"is_secret": false`` and ``"reason"``)."""
    baseline = _findings(json.loads(Path(baseline_path).read_text()))
    fresh = _findings(json.loads(Path(fresh_path).read_text()))
    new = sorted(set(fresh) - set(baseline))
    unaudited = sorted(
        key
        for key, entry in baseline.items()
        if entry.get("is_secret") is not False or not str(entry.get("reason", "")).strip()
    )
    if new:
        first = fresh[new[0]]
        say(
            f"{len(new)} possible secret(s) not in {baseline_path}, first {first['filename']}:"
            f"{first['line_number']} ({first['type']}); remove it, or audit it into the "
            "baseline with a reason (docs/operations.md, Supply chain and scanning)"
        )
        return 1
    if unaudited:
        file, kind, _ = unaudited[0]
        say(
            f"{len(unaudited)} baseline entr(ies) not audited as a false positive with a "
            f"reason, first {file} ({kind})"
        )
        return 1
    stale = len(set(baseline) - set(fresh))
    say(
        f"{len(fresh)} finding(s), all audited false positives in the baseline"
        + (f"; {stale} baseline entr(ies) no longer found" if stale else "")
    )
    return 0


def update(baseline_path: str, fresh_path: str) -> int:
    """Rewrite the baseline from a fresh scan, keeping ``is_secret`` and ``reason`` of the
    entries it already had (``detect-secrets scan --baseline`` would drop the reasons); new
    entries come without them, so ``secrets`` fails until someone audits them."""
    old = _findings(json.loads(Path(baseline_path).read_text()))
    document = json.loads(Path(fresh_path).read_text())
    added = 0
    for key, entry in _findings(document).items():
        if key in old and "reason" in old[key]:
            entry["is_secret"] = old[key].get("is_secret")
            entry["reason"] = old[key]["reason"]
        else:
            added += 1
    Path(baseline_path).write_text(json.dumps(document, indent=2) + "\n")
    say(f"{baseline_path}: {added} new entr(ies) to audit (set is_secret and reason)")
    return 0


def bandit(report_path: str, exit_code: str) -> int:
    """bandit's findings by severity (any finding fails, as bandit's own exit status)."""
    try:
        report = json.loads(Path(report_path).read_text())
    except (OSError, ValueError):
        say(f"bandit wrote no report (exit {exit_code})")
        return 2
    results = report.get("results", [])
    errors = report.get("errors", [])
    totals = report.get("metrics", {}).get("_totals", {})
    skipped = int(totals.get("nosec", 0)) + int(totals.get("skipped_tests", 0))
    lines = int(totals.get("loc", 0))
    if errors:
        say(f"bandit could not scan {errors[0].get('filename')}: {errors[0].get('reason')}")
        return 2
    if results:
        first = results[0]
        say(
            f"{len(results)} finding(s), first {first['test_id']} {first['issue_severity']} at "
            f"{first['filename']}:{first['line_number']}: {first['issue_text']}"
        )
        return 1
    say(f"no findings in {lines} lines of src/ ({skipped} reviewed nosec)")
    return 0


def audit(report_path: str, exit_code: str, log_path: str, service: str, text_path: str) -> int:
    """Vulnerabilities fail (1); a dependency the service could not audit, or no answer at
    all, is "not run" (3) with the reason, never a pass."""
    log = Path(log_path).read_text(errors="replace") if Path(log_path).exists() else ""
    try:
        report = json.loads(Path(report_path).read_text())
    except (OSError, ValueError):
        last = next((line for line in reversed(log.splitlines()) if line.strip()), "no output")
        say(f"pip-audit ({service}) gave no report (exit {exit_code}): {last.strip()[:300]}")
        return 3
    dependencies = report.get("dependencies", [])
    skipped = [d for d in dependencies if d.get("skip_reason")]
    vulnerable = [d for d in dependencies if d.get("vulns")]
    lines = [
        f"{d['name']} {d.get('version', '')}: "
        + ", ".join(
            f"{v['id']} (fixed in {', '.join(v.get('fix_versions') or ['-'])})" for v in d["vulns"]
        )
        for d in vulnerable
    ]
    lines += [f"{d['name']}: not audited: {d['skip_reason']}" for d in skipped]
    audited = len(dependencies) - len(skipped)
    lines.append(
        f"service {service}: {audited} of {len(dependencies)} pinned dependencies audited, "
        f"{len(vulnerable)} vulnerable"
    )
    Path(text_path).write_text("\n".join(lines) + "\n")
    if vulnerable:
        first = vulnerable[0]
        say(
            f"{len(vulnerable)} vulnerable dependenc(ies), first {first['name']} "
            f"{first.get('version', '')}: {first['vulns'][0]['id']} (see {text_path})"
        )
        return 1
    if not dependencies:
        say(f"pip-audit ({service}) listed no dependency (exit {exit_code})")
        return 3
    if skipped:
        say(
            f"{len(skipped)} of {len(dependencies)} pinned dependencies could not be audited "
            f"by the {service} service, first {skipped[0]['name']}: {skipped[0]['skip_reason']}"
        )
        return 3
    say(f"{len(dependencies)} pinned dependencies audited ({service}): no known vulnerability")
    return 0


def sbom(path: str) -> int:
    """The document validates against CycloneDX 1.6's JSON schema (strict)."""
    from cyclonedx.schema import OutputFormat, SchemaVersion
    from cyclonedx.validation import make_schemabased_validator

    text = Path(path).read_text()
    validator = make_schemabased_validator(OutputFormat.JSON, SchemaVersion.V1_6)
    error = validator.validate_str(text)
    if error is not None:
        say(f"{path} does not validate as CycloneDX 1.6: {str(error)[:300]}")
        return 1
    document = json.loads(text)
    say(f"CycloneDX 1.6, {len(document.get('components', []))} components, valid")
    return 0


def main(argv: list[str]) -> int:
    commands: dict[str, Callable[..., int]] = {
        "secrets": secrets,
        "update": update,
        "bandit": bandit,
        "audit": audit,
        "sbom": sbom,
    }
    if not argv or argv[0] not in commands:
        say(__doc__)
        return 2
    return commands[argv[0]](*argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
