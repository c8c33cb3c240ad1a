"""Speaker-invariant feature projection for the classic models: nuisance-attribute projection (NAP).

As in speaker verification, the directions in feature space along which *speakers* differ while saying the
same emotion are estimated from the training clips and projected out before the classifier sees the
features. For every emotion class, each speaker's mean (standardised) feature vector is centred on the mean
of those speaker means; the top `dims` eigenvectors of the scatter of these centred means span the nuisance
subspace, and the step maps x -> x (I - V V^T). A speaker's voice, microphone and room move a clip mostly along
these directions, so a classifier that cannot see them must use what varies with the emotion instead.

The projection is a fixed linear map, stored as a scikit-learn `TruncatedSVD` whose `components_` is the
(symmetric) projection matrix: `transform` is then exactly x @ P, skops saves it without custom types, and
skl2onnx converts it to one MatMul, so the ONNX export needs no change.

Measured effect (docs/cross-corpus.md, "Speaker-invariance variants"): small; it is opt-in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # scikit-learn loads when a model trains, not when the plugin registers
    from sklearn.decomposition import TruncatedSVD

INVARIANCE_MODES = ("none", "nap")


def check_invariance(mode: str | None, dims: int) -> str:
    """The mode ('none' for None); a ValueError names a bad mode or dimension count."""
    mode = "none" if mode is None else mode
    if mode not in INVARIANCE_MODES:
        raise ValueError(f"invariance must be one of {', '.join(INVARIANCE_MODES)}, not {mode!r}")
    if mode != "none" and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
        raise ValueError(f"invariance_dims must be a whole number of at least 1, not {dims!r}")
    return mode


def nuisance_directions(features: np.ndarray, labels: np.ndarray, speakers: Sequence[object], dims: int) -> np.ndarray:
    """[dims', n_features] orthonormal rows: the top within-class between-speaker directions (dims' <= dims, fewer
    when the speakers' class means span fewer directions)."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    keys = np.unique(np.array([str(s) for s in speakers]), return_inverse=True)[1]
    centred = []
    for label in np.unique(labels):
        in_class = labels == label
        means = np.array([features[in_class & (keys == k)].mean(axis=0) for k in np.unique(keys[in_class])])
        if len(means) > 1:
            centred.append(means - means.mean(axis=0))
    if not centred:
        raise ValueError("invariance=nap needs at least two speakers with clips of the same emotion")
    rows = np.concatenate(centred)
    # right singular vectors of the centred means = eigenvectors of their scatter, largest first
    _, singular, vt = np.linalg.svd(rows, full_matrices=False)
    rank = int(np.sum(singular > singular[0] * 1e-10)) if singular.size and singular[0] > 0 else 0
    return vt[: min(dims, rank)]


def nap_step(features: np.ndarray, labels: np.ndarray, speakers: Sequence[object], dims: int) -> TruncatedSVD:
    """A fitted pipeline step that projects the `dims` nuisance directions of `features` out (see the module)."""
    if len(speakers) != len(labels) or len(features) != len(labels):
        raise ValueError(f"{len(features)} feature rows, {len(labels)} labels and {len(speakers)} speaker ids")
    directions = nuisance_directions(features, labels, speakers, dims)
    n_features = features.shape[1]
    projection = np.eye(n_features) - directions.T @ directions
    from sklearn.decomposition import TruncatedSVD

    step = TruncatedSVD(n_components=n_features)
    # set, not fitted: the step is the fixed map x -> x @ P.T (P is symmetric), see the module docstring
    step.components_ = projection
    step.n_features_in_ = n_features
    step.explained_variance_ = np.ones(n_features)
    step.explained_variance_ratio_ = np.full(n_features, 1.0 / n_features)
    step.singular_values_ = np.ones(n_features)
    return step
