"""Where this process stands in a multi-process launch (accelerate launch / torchrun set RANK)."""

from __future__ import annotations

import os
import sys


def is_secondary_process() -> bool:
    """True on any rank but the first: only the first one writes files and prints results."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() != 0
    return int(os.environ.get("RANK", "0") or 0) != 0
