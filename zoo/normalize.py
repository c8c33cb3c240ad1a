"""Normalisation at inference over a group of clips: per speaker, or over everything scored together.

It works on the model's output, so it applies unchanged to every model, native or ONNX: within a group,
each class's log-probability is centred on its mean over the group's clips, then the rows are renormalised.
That removes what the group's clips share — a speaker's or a recording chain's pull towards some classes —
and keeps what tells the clips apart. The centring is shrunk for small groups (weight n / (n + shrinkage)), so
a group of one clip is left almost as it was.

It helps when a group holds several clips with mixed emotions (a speaker's recordings, a call centre's day);
it hurts when a group's clips really share one emotion (it pulls them apart) and does nothing for single clips.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NORMALIZE_MODES = ("none", "speaker", "session")
DEFAULT_SHRINKAGE = 4.0
_ABSENT = 1e-9  # a class this improbable for every clip of a group stays at zero (models that never predict it)


def normalize_probabilities(probabilities: np.ndarray, groups: Sequence[object] | None,
                            shrinkage: float = DEFAULT_SHRINKAGE) -> np.ndarray:
    """[n, classes] probabilities, each group's class log-probabilities centred (shrunk) and renormalised.

    `groups` holds one key per row (None: every row in one group, the 'session').
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2:
        raise ValueError(f"probabilities must be [clips, classes], not shape {probabilities.shape}")
    if shrinkage < 0:
        raise ValueError(f"shrinkage must be >= 0, not {shrinkage}")
    keys = np.zeros(len(probabilities), dtype=np.int64) if groups is None else np.unique(
        np.array([str(g) for g in groups]), return_inverse=True)[1]
    if len(keys) != len(probabilities):
        raise ValueError(f"{len(keys)} group keys for {len(probabilities)} rows")
    result = probabilities.copy()
    for key in np.unique(keys):
        rows = keys == key
        block = probabilities[rows]
        present = block.max(axis=0) > _ABSENT
        log_p = np.log(np.clip(block[:, present], 1e-12, 1.0))
        weight = rows.sum() / (rows.sum() + shrinkage)
        log_p -= weight * log_p.mean(axis=0, keepdims=True)
        log_p -= log_p.max(axis=1, keepdims=True)
        adjusted = np.zeros_like(block)
        adjusted[:, present] = np.exp(log_p)
        result[rows] = adjusted / adjusted.sum(axis=1, keepdims=True)
    return result


def normalization_groups(mode: str, speakers: Sequence[str | None], source: str = "") -> list[object] | None:
    """Group keys for `mode`: None for 'session' (one group), speaker ids for 'speaker'. Raises on 'none'."""
    if mode == "session":
        return None
    if mode == "speaker":
        missing = sum(s is None for s in speakers)
        if missing:
            raise ValueError(f"{source or 'the input'}: --normalize speaker needs a speaker for every clip "
                             f"({missing} of {len(speakers)} have none; give a manifest with a speaker column)")
        return list(speakers)
    raise ValueError(f"normalize must be one of {', '.join(NORMALIZE_MODES)}, not {mode!r}")
