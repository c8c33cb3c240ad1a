"""Sample weights that balance classes, and corpora within each class, when several corpora are combined.

Each class gets the same total weight; within a class, every corpus that has clips of it gets an equal share,
split evenly over its clips. A large corpus (nEMO: 3,147 clips) therefore cannot drown a small one (EmoDB:
454), and a class one corpus lacks (nEMO has no disgust) is learnt from the corpora that have it. Weights
are scaled to average 1, so learning rates and regularisation keep their meaning.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BALANCE_MODES = ("corpus", "class", "none")


def balanced_sample_weights(labels: Sequence[int], corpora: Sequence[str | None] | None = None,
                            mode: str = "corpus") -> np.ndarray | None:
    """Per-clip weights for `mode` 'corpus' (classes, then corpora within a class), 'class', or 'none' (None)."""
    if mode not in BALANCE_MODES:
        raise ValueError(f"balance must be one of {', '.join(BALANCE_MODES)}, not {mode!r}")
    if mode == "none":
        return None
    labels = np.asarray(labels)
    if mode == "class" or corpora is None:
        groups = np.zeros(len(labels), dtype=np.int64)
    else:
        if len(corpora) != len(labels):
            raise ValueError(f"{len(corpora)} corpus names but {len(labels)} labels")
        groups = np.unique(np.array([str(c) for c in corpora]), return_inverse=True)[1]
    weights = np.zeros(len(labels), dtype=np.float64)
    for label in np.unique(labels):
        in_class = labels == label
        sharing = np.unique(groups[in_class])
        for group in sharing:
            cell = in_class & (groups == group)
            weights[cell] = 1.0 / (len(sharing) * cell.sum())
    return weights * (len(weights) / weights.sum())
