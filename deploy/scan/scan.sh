#!/usr/bin/env bash
# The supply-chain stage of CI (`make scan`): secret scanning of the repository against the
# audited baseline, bandit on src/, a vulnerability audit of the locked environment with
# pip-audit, and a CycloneDX SBOM of the locked environment. Reports go to scan-report/
# (git-ignored). Exits non-zero when any step finds something, or cannot run.
#
# The audit needs the package index's vulnerability data (pip-audit's `pypi` service, or
# `osv` with MEDOPS_SCAN_AUDIT_SERVICE=osv). When it cannot get it for every locked
# dependency the step FAILS, naming why. MEDOPS_SCAN_OFFLINE=record turns that one failure
# into a recorded "audit not run: <reason>" (scan-report/pip-audit.txt and the summary) and
# lets the stage pass; a vulnerability found always fails. See docs/operations.md,
# "Supply chain and scanning".
set -uo pipefail
cd "$(dirname "$0")/../.."

report="${MEDOPS_SCAN_REPORT:-scan-report}"
bin=.venv/bin
uv=.tools/bin/uv
checks=deploy/scan/checks.py
rm -rf "$report"
mkdir -p "$report"
summary="$report/summary.txt"
: >"$summary"
failed=0
started=$SECONDS

# Every tool must be there: a missing tool fails the stage, it never skips it.
for tool in "$bin/detect-secrets" "$bin/bandit" "$bin/pip-audit" "$bin/cyclonedx-py" "$uv"; do
    if [ ! -x "$tool" ]; then
        echo "scan: $tool is missing: run 'make setup'" | tee -a "$summary" >&2
        exit 1
    fi
done

record() { # record STEP VERDICT DETAIL
    printf '%-8s %-7s %s\n' "$1" "$2" "$3" | tee -a "$summary"
    if [ "$2" = "FAIL" ]; then failed=1; fi
}

# 1. Secrets: every finding in the tracked files must be in .secrets.baseline, audited as
# not a secret with a reason (deploy/scan/checks.py secrets).
t=$SECONDS
# The baseline itself is left out: it holds the hashes of what it lists.
if "$bin/detect-secrets" scan --exclude-files '^\.secrets\.baseline$' >"$report/secrets.json" 2>"$report/secrets.log"; then
    if detail=$("$bin/python" "$checks" secrets .secrets.baseline "$report/secrets.json"); then
        record secrets ok "$detail ($((SECONDS - t)) s)"
    else
        record secrets FAIL "$detail"
    fi
else
    record secrets FAIL "detect-secrets did not run: $(tail -n 1 "$report/secrets.log")"
fi

# 2. bandit on src/ with the configuration in pyproject.toml ([tool.bandit]).
t=$SECONDS
"$bin/bandit" -q -c pyproject.toml -r src -f json -o "$report/bandit.json" 2>"$report/bandit.log"
code=$?
if detail=$("$bin/python" "$checks" bandit "$report/bandit.json" "$code"); then
    record bandit ok "$detail ($((SECONDS - t)) s)"
else
    record bandit FAIL "$detail (see $report/bandit.json)"
fi

# 3. The locked environment (runtime dependencies, no dev group), pinned with hashes.
t=$SECONDS
if ! "$uv" export --frozen --no-dev --no-emit-project --quiet >"$report/requirements.lock.txt"; then
    record lock FAIL "uv export --frozen failed: is uv.lock in step with pyproject.toml?"
fi

# 4. pip-audit of those pins against the vulnerability service (no install: --disable-pip).
service="${MEDOPS_SCAN_AUDIT_SERVICE:-pypi}"
"$bin/pip-audit" -r "$report/requirements.lock.txt" --disable-pip -s "$service" \
    --timeout 20 --progress-spinner off -f json -o "$report/pip-audit.json" \
    >"$report/pip-audit.log" 2>&1
code=$?
detail=$("$bin/python" "$checks" audit "$report/pip-audit.json" "$code" \
    "$report/pip-audit.log" "$service" "$report/pip-audit.txt")
verdict=$?
if [ "$verdict" = 0 ]; then
    record audit ok "$detail ($((SECONDS - t)) s)"
elif [ "$verdict" = 3 ] && [ "${MEDOPS_SCAN_OFFLINE:-}" = "record" ]; then
    echo "audit not run: $detail" >"$report/pip-audit.txt"
    record audit NOT-RUN "audit not run: $detail (recorded: MEDOPS_SCAN_OFFLINE=record)"
    echo "scan: WARNING: the dependency vulnerability audit did NOT run; see $report/pip-audit.txt" >&2
elif [ "$verdict" = 3 ]; then
    record audit FAIL "audit not run: $detail (MEDOPS_SCAN_OFFLINE=record records this instead)"
else
    record audit FAIL "$detail"
fi

# 5. A CycloneDX 1.6 SBOM of the locked environment, validated by cyclonedx-python-lib.
t=$SECONDS
if "$bin/cyclonedx-py" requirements "$report/requirements.lock.txt" --pyproject pyproject.toml \
    --sv 1.6 --of JSON --output-reproducible -o "$report/sbom.cdx.json" \
    >"$report/sbom.log" 2>&1 \
    && detail=$("$bin/python" "$checks" sbom "$report/sbom.cdx.json"); then
    record sbom ok "$detail ($((SECONDS - t)) s)"
else
    record sbom FAIL "${detail:-cyclonedx-py failed: $(tail -n 1 "$report/sbom.log")}"
fi

echo "scan: $((SECONDS - started)) s; reports in $report/"
if [ "$failed" != 0 ]; then
    echo "scan: FAILED (see $summary)" >&2
    exit 1
fi
