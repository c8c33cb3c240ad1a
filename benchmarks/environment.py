"""What a benchmark ran on: CPU, GPU, memory, thread settings, library versions and the code's git commit."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zoo.model import library_versions

REPO_ROOT = Path(__file__).resolve().parents[1]
_EXTRA_LIBRARIES = ("onnxruntime-gpu", "onnxruntime", "skl2onnx", "matplotlib", "scipy", "joblib")
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError):
        pass
    return None


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def gpus() -> list[dict[str, str]]:
    """NVIDIA GPUs as nvidia-smi lists them (empty without a driver)."""
    try:
        output = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in output.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            found.append({"name": parts[0], "driver": parts[1], "memory": parts[2]})
    return found


GENERATED_OUTPUTS = ("leaderboard", "LEADERBOARD.md")


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20,
                                  check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    # make leaderboard rewrites its outputs run by run: they are results, not the code that was measured
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                 *(f":(exclude){path}" for path in GENERATED_OUTPUTS))
    return {"commit": commit, "dirty": bool(status)}


def thread_settings() -> dict[str, Any]:
    settings: dict[str, Any] = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        settings["torch_intra_op"] = torch.get_num_threads()
        settings["torch_inter_op"] = torch.get_num_interop_threads()
    return settings


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the platform has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_id(environment: dict[str, Any]) -> str:
    """A short fingerprint of the hardware (not the host name, which changes with every container)."""
    hardware = [environment.get("cpu_model"), environment.get("logical_cores"), environment.get("memory_gib"),
                [g.get("name") for g in environment.get("gpus", [])]]
    return hashlib.sha256(repr(hardware).encode()).hexdigest()[:12]


def describe_machine(environment: dict[str, Any]) -> str:
    gpu = ", ".join(g["name"] for g in environment.get("gpus", [])) or "no GPU"
    return (f"{environment.get('cpu_model')} ({environment.get('usable_cores')} of "
            f"{environment.get('logical_cores')} cores usable), {environment.get('memory_gib')} GiB, {gpu}")


def capture() -> dict[str, Any]:
    """The environment of this process, now (call after the models ran, so torch's thread counts show)."""
    environment: dict[str, Any] = {
        "captured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "memory_gib": memory_gib(),
        "gpus": gpus(),
        "threads": thread_settings(),
        "load_average": load_average(),
        "libraries": library_versions(_EXTRA_LIBRARIES),
        "git": git_state(),
    }
    environment["machine_id"] = machine_id(environment)
    return environment
