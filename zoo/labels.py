"""The six emotion classes of the DACON competition, in label-id order."""

from __future__ import annotations

LABELS: tuple[str, ...] = ("angry", "fear", "sad", "disgust", "neutral", "happy")
LABEL_TO_ID: dict[str, int] = {name: i for i, name in enumerate(LABELS)}

_ALIASES = {
    "anger": "angry",
    "fearful": "fear",
    "fear": "fear",
    "sadness": "sad",
    "disgusted": "disgust",
    "neu": "neutral",
    "happiness": "happy",
    "joy": "happy",
    "ang": "angry",
    "fea": "fear",
    "dis": "disgust",
    "hap": "happy",
}


def normalise_label(value: str | int) -> int:
    """Return the label id of a label given as id, name or common alias."""
    if isinstance(value, (int,)) or (isinstance(value, str) and value.strip().isdigit()):
        label_id = int(value)
        if not 0 <= label_id < len(LABELS):
            raise ValueError(f"label id {label_id} is outside 0..{len(LABELS) - 1}")
        return label_id
    name = str(value).strip().lower()
    name = _ALIASES.get(name, name)
    if name not in LABEL_TO_ID:
        raise ValueError(f"unknown emotion label {value!r}; expected one of {', '.join(LABELS)}")
    return LABEL_TO_ID[name]
