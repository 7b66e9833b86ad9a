#!/usr/bin/env bash
# Create the benchmark-only virtual environment used by benchmarks/datasets.py:
#   benchmarks/.dvc-venv with DVC 3.67.1 (the version issue 20 measured).
# Usage: bash benchmarks/dvc-peers/setup.sh [python]   (default python: python3; 3.11+)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../make-venv.sh" "$here" .dvc-venv "$@"
