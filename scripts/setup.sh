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
# Compile librosa's numba kernels once, in one process: on a fresh install, parallel feature workers compiling
# and caching the same kernels at once left a corrupt cache that segfaulted every later run of yin.
"$VENV/bin/python" - <<'PY'
import numpy as np

from plugins.classic.features import extract, feature_config

for name in ("emorobust", "seed"):
    config = feature_config(name)
    t = np.arange(2 * config.sample_rate) / config.sample_rate
    extract((0.1 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32), config)
PY
touch "$stamp"
