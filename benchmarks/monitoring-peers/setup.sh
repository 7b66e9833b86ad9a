#!/usr/bin/env bash
# Create the benchmark-only virtual environment used by benchmarks/monitoring.py:
#   benchmarks/.monitoring-venv with Evidently 0.7.23 (which needs pandas < 3), numpy, scipy.
# Usage: bash benchmarks/monitoring-peers/setup.sh [python]   (default python: python3; 3.11+)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$(cd "$here/.." && pwd)/.monitoring-venv"
python="${1:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
# Keep the environment out of git without touching the repository's .gitignore.
echo '*' > "$venv/.gitignore"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
constraints=()
if [[ -f "$here/requirements.lock.txt" ]]; then
    constraints=(-c "$here/requirements.lock.txt")
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$here/requirements.txt" "${constraints[@]}"
"$venv/bin/python" -m pip check
echo "monitoring venv ready: $venv"
