#!/usr/bin/env bash
# Creates .venv and installs emozoo with its dev tools. Idempotent: does nothing when up to date.
# Without an NVIDIA GPU, torch is installed as the CPU build first (set TORCH_INDEX_URL, e.g.
# https://download.pytorch.org/whl/cpu, where the default index would hand out a CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
stamp="$VENV/.emozoo-installed"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
    exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --upgrade pip >/dev/null
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        "${pip[@]}" torch
    else
        "${pip[@]}" "torch==${TORCH_CPU_VERSION:-2.13.0}" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
    fi
fi
"${pip[@]}" -e ".[dev]"
touch "$stamp"
