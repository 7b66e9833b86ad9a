#!/usr/bin/env bash
# Create the benchmark-only virtual environment used by benchmarks/serving.py:
#   benchmarks/.peers-venv with MLflow, BentoML, FastAPI/uvicorn, onnxruntime, skl2onnx.
# Usage: bash benchmarks/peers/setup.sh [python]   (default python: python3; needs 3.11+)
# Also needs `wrk` on PATH (Debian: apt-get install -y wrk).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$(cd "$here/.." && pwd)/.peers-venv"
python="${1:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
# Keep the environment out of git without touching the repository's .gitignore.
echo '*' > "$venv/.gitignore"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$here/requirements.txt" -c "$here/requirements.lock.txt"
"$venv/bin/python" -m pip check
command -v wrk >/dev/null || echo "note: wrk not found; install it (Debian: apt-get install -y wrk)" >&2
echo "peers venv ready: $venv"
