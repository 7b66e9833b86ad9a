#!/usr/bin/env bash
# Create the benchmark-only virtual environment used by benchmarks/feature_store.py:
#   benchmarks/.feast-venv with Feast 0.67.0 (local provider, file offline store).
# Usage: bash benchmarks/feast-peers/setup.sh [python]   (default python: python3; 3.11+)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../make-venv.sh" "$here" .feast-venv "$@"
