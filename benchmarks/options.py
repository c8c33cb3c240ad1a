"""Parsing of `emozoo bench` arguments that are not plain click types."""

from __future__ import annotations

from collections.abc import Sequence

from zoo.cli.common import parse_model_params  # noqa: F401 - re-exported: bench and robustness read it here
from zoo.errors import EmozooError


def parse_list(text: str, allowed: Sequence[str], what: str) -> list[str]:
    """"native,onnx" -> ["native", "onnx"], each checked against `allowed`."""
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [c for c in chosen if c not in allowed]
    if unknown or not chosen:
        raise EmozooError(f"unknown {what} {', '.join(map(repr, unknown)) or repr(text)}; "
                          f"choose from {', '.join(allowed)}")
    return list(dict.fromkeys(chosen))
