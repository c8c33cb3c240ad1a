"""Parsing of `emozoo bench` arguments that are not plain click types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zoo.cli.common import parse_value
from zoo.errors import EmozooError


def parse_list(text: str, allowed: Sequence[str], what: str) -> list[str]:
    """"native,onnx" -> ["native", "onnx"], each checked against `allowed`."""
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [c for c in chosen if c not in allowed]
    if unknown or not chosen:
        raise EmozooError(f"unknown {what} {', '.join(map(repr, unknown)) or repr(text)}; "
                          f"choose from {', '.join(allowed)}")
    return list(dict.fromkeys(chosen))


def parse_model_params(pairs: Sequence[str], specs: Sequence[str]) -> dict[str | None, dict[str, Any]]:
    """`KEY=VALUE` applies to every model, `MODEL:KEY=VALUE` to one (MODEL as given on the command line)."""
    params: dict[str | None, dict[str, Any]] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise EmozooError(f"--param {pair!r} is not [MODEL:]KEY=VALUE")
        target: str | None = None
        if ":" in key:
            target, key = key.rsplit(":", 1)
            if target not in specs:
                raise EmozooError(f"--param {pair!r} names {target!r}, which is not among the models benchmarked "
                                  f"({', '.join(specs)})")
        params.setdefault(target, {})[key.strip().replace("-", "_")] = parse_value(value.strip())
    return params
