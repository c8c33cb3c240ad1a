"""The `members` parameter of the ensemble: ``name`` or ``name(key=value,key=value)``, comma-separated.

``librosa-svc(C=3),librosa-logreg,librosa-rf(n_estimators=200)``: commas inside parentheses separate one
member's parameters, commas outside them separate members. Values read as on the command line (numbers,
true/false, none, JSON, else text). A model may appear twice with different parameters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from zoo.cli.common import parse_value
from zoo.errors import EmozooError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class MemberSpec:
    """One member: a registered model name and the parameters it is built with."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}({','.join(f'{k}={_written(v)}' for k, v in self.params.items())})"


def _written(value: Any) -> str:
    """A value as it would be typed so that it reads back the same (`"none"` for the text none)."""
    if isinstance(value, str):
        return value if parse_value(value) == value else json.dumps(value)
    return json.dumps(value) if isinstance(value, (list, dict, bool)) or value is None else str(value)


_CLOSING = {"(": ")", "[": "]", "{": "}"}


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses and JSON brackets (`channels=[8,16]`); refuse unbalanced ones."""
    parts, open_brackets, current = [], [], []
    for char in text:
        if char in _CLOSING:
            open_brackets.append(char)
        elif char in _CLOSING.values():
            if not open_brackets or _CLOSING[open_brackets[-1]] != char:
                raise EmozooError(f"ensemble members {text!r}: a {char!r} without its opening bracket")
            open_brackets.pop()
        if char == "," and not open_brackets:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if open_brackets:
        raise EmozooError(f"ensemble members {text!r}: a {open_brackets[-1]!r} is never closed")
    parts.append("".join(current))
    return [part.strip() for part in parts]


def _parse_one(text: str, whole: str) -> MemberSpec:
    name, _, rest = text.partition("(")
    name = name.strip()
    if not name or not _NAME.fullmatch(name):
        raise EmozooError(f"ensemble members {whole!r}: {text!r} is not MODEL or MODEL(KEY=VALUE,...)")
    params: dict[str, Any] = {}
    if rest:
        if not rest.endswith(")"):
            raise EmozooError(f"ensemble members {whole!r}: {text!r} has text after its ')'")
        inner = rest[:-1].strip()
        for pair in _split_top_level(inner) if inner else []:
            key, equals, value = pair.partition("=")
            key = key.strip().replace("-", "_")
            if not equals or not key:
                raise EmozooError(f"ensemble member {text!r}: {pair!r} is not KEY=VALUE")
            if key in params:
                raise EmozooError(f"ensemble member {text!r}: parameter {key!r} given twice")
            params[key] = parse_value(value.strip())
    return MemberSpec(name, params)


def parse_members(members: str | Sequence[str]) -> list[MemberSpec]:
    """The member list from its text form (or a list of member texts, as Python callers may pass)."""
    if isinstance(members, str):
        texts = _split_top_level(members)
        whole = members
    else:
        texts = [str(m).strip() for m in members]
        whole = ",".join(texts)
    if not texts or any(not t for t in texts):
        raise EmozooError(f"ensemble members {whole!r}: empty member name (members=MODEL,MODEL,...)")
    specs = [_parse_one(text, whole) for text in texts]
    if len(specs) < 2:
        raise EmozooError(f"ensemble members {whole!r}: an ensemble needs at least two members")
    return specs


def parse_weights(weights: str | float | Sequence[float] | None, count: int) -> list[float] | None:
    """`weights` as given ("2,1,1", a list, or None for equal weights), checked against the member count."""
    if weights is None or weights == "":
        return None
    if isinstance(weights, str):
        try:
            values = [float(w) for w in weights.split(",")]
        except ValueError:
            raise EmozooError(f"ensemble weights {weights!r}: not comma-separated numbers") from None
    elif isinstance(weights, (int, float)):
        values = [float(weights)]
    else:
        values = [float(w) for w in weights]
    if len(values) != count:
        raise EmozooError(f"ensemble weights {weights!r}: {len(values)} weight(s) for {count} members")
    if any(not (w >= 0) for w in values) or sum(values) <= 0:
        raise EmozooError(f"ensemble weights {weights!r}: weights must be >= 0 and not all zero")
    total = sum(values)
    return [w / total for w in values]
