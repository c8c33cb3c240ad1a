"""Screening of speaker/corpus-invariance transforms for librosa-logreg, leave-one-corpus-out (issue 12).

    python -m benchmarks.invariance_screen --data ../shared/data/emodb --data ../shared/data/ravdess \\
        --data ../shared/data/nemo [--augment] [--variants base,nap3,nap20,...]

It refits only the classifier, on cached `emorobust` features (the plugin's own extraction and cache), so a
variant costs seconds instead of a full `emozoo cv` run. The pipeline is that of `librosa-logreg`
(`balance=corpus` sample weights, StandardScaler, LogisticRegression C=0.1); `--augment` adds the plugin's
augmented copies of each training fold (as `augment=default`). Temperature calibration is left out: it does
not change the predicted class, hence not UAR. Printed: UAR per held-out corpus (over the classes it has) and
the mean. Results are in docs/cross-corpus.md ("Speaker-invariance variants").

Variants: `base`; `napK` (project out the top K within-class between-speaker directions, as
`--param invariance=nap invariance_dims=K`); `napcK` (the same with corpora instead of speakers); `wccnL`
(whiten with (S_speaker + L * S_within)^-1/2); `swapS` (one extra copy of every training vector with its
speaker's offset replaced by another speaker's, times S); `gaussS` (one extra copy with a random Gaussian
combination of speaker offsets, times S); `selectF` (keep the fraction F of features with the lowest
between-speaker / between-class variance ratio).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score
from sklearn.preprocessing import StandardScaler

from plugins.classic.extraction import extract_augmented
from plugins.classic.invariance import nuisance_directions
from plugins.classic.models import LibrosaLogReg
from zoo import datasets
from zoo.balance import balanced_sample_weights
from zoo.cache import FeatureCache

Transform = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _group_scatter(z: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    centred = []
    for label in np.unique(y):
        means = np.array([z[(y == label) & (groups == g)].mean(0) for g in np.unique(groups[y == label])])
        centred.append(means - means.mean(0))
    rows = np.concatenate(centred)
    return rows.T @ rows / len(rows)


def _within_scatter(z: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    rows = [z[m] - z[m].mean(0) for g in np.unique(groups) for label in np.unique(y)
            if (m := (groups == g) & (y == label)).sum() > 1]
    stacked = np.concatenate(rows)
    return stacked.T @ stacked / len(stacked)


def _offsets(z: np.ndarray, y: np.ndarray, speakers: np.ndarray) -> dict[str, np.ndarray]:
    """Each speaker's class-centred offset: the mean over its classes of (its class mean - the class mean)."""
    class_means = {k: np.array([z[(y == k) & (speakers == s)].mean(0) for s in np.unique(speakers[y == k])]).mean(0)
                   for k in np.unique(y)}
    return {s: np.mean([z[(speakers == s) & (y == k)].mean(0) - class_means[k] for k in np.unique(y[speakers == s])],
                       axis=0) for s in np.unique(speakers)}


def transform_for(variant: str) -> tuple[Transform | None, Callable[..., tuple] | None]:
    """(linear map fitted on the standardised original clips, extra training copies) for a variant name."""
    if variant == "base":
        return None, None
    if variant.startswith("napc") or variant.startswith("nap"):
        corpus = variant.startswith("napc")
        dims = int(variant[4 if corpus else 3:])

        def nap(z: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
            keys = np.array([g.split(":")[0] for g in groups]) if corpus else groups
            v = nuisance_directions(z, y, keys, dims)
            return np.eye(z.shape[1]) - v.T @ v
        return nap, None
    if variant.startswith("wccn"):
        lam = float(variant[4:])

        def wccn(z: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
            vals, vecs = np.linalg.eigh(_group_scatter(z, y, groups) + lam * _within_scatter(z, y, groups))
            vals = np.maximum(vals, 1e-6 * vals.max())
            return vecs @ np.diag(vals ** -0.5) @ vecs.T * np.sqrt(vals.mean())
        return wccn, None
    if variant.startswith("select"):
        fraction = float(variant[6:])

        def select(z: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
            class_means = np.array([z[y == k].mean(0) for k in np.unique(y)])
            ratio = np.diag(_group_scatter(z, y, groups)) / (class_means.var(0) + 1e-9)
            return np.diag((ratio <= np.quantile(ratio, fraction)).astype(float))
        return select, None
    if variant.startswith(("swap", "gauss")):
        gauss = variant.startswith("gauss")
        scale = float(variant[5 if gauss else 4:])

        def extra(z: np.ndarray, y: np.ndarray, w: np.ndarray, speakers: np.ndarray) -> tuple:
            rng = np.random.default_rng(0)
            table = _offsets(z, y, speakers)
            offsets = np.array(list(table.values()))
            if gauss:
                moved = z + scale * rng.standard_normal((len(z), len(offsets))) / np.sqrt(len(offsets)) @ offsets
            else:
                own = np.array([table[s] for s in speakers])
                moved = z - own + scale * offsets[rng.integers(len(offsets), size=len(z))]
            return np.concatenate([z, moved]), np.concatenate([y, y]), np.concatenate([w, w])
        return None, extra
    raise SystemExit(f"unknown variant {variant!r}")


def run(variant: str, x: np.ndarray, y: np.ndarray, speakers: np.ndarray, corpora: np.ndarray,
        copies: dict[str, np.ndarray] | None) -> dict[str, float]:
    transform, extra = transform_for(variant)
    result = {}
    for name in sorted(set(corpora)):
        train, test = np.flatnonzero(corpora != name), np.flatnonzero(corpora == name)
        weights = balanced_sample_weights(y[train], list(corpora[train]), "corpus")
        xs, ys, ws, ss = x[train], y[train], weights, speakers[train]
        if copies is not None:
            xs, ys = np.concatenate([xs, copies[name]]), np.tile(ys, 2)
            ws, ss = np.tile(ws, 2), np.tile(ss, 2)
        scaler = StandardScaler().fit(xs)
        z = scaler.transform(xs)
        matrix = transform(scaler.transform(x[train]), y[train], speakers[train]) if transform else None
        if matrix is not None:
            z = z @ matrix
        if extra is not None:
            z, ys, ws = extra(z, ys, ws, ss)
        classifier = LogisticRegression(C=0.1, max_iter=5000).fit(z, ys, sample_weight=ws)
        zt = scaler.transform(x[test])
        predicted = classifier.predict(zt if matrix is None else zt @ matrix)
        result[name] = float(recall_score(y[test], predicted, labels=np.unique(y[test]), average="macro"))
    result["mean"] = float(np.mean(list(result.values())))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--augment", action="store_true", help="add the plugin's augmented copies (augment=default)")
    parser.add_argument("--variants", default="base,nap3,nap10,nap20,napc2,wccn1,swap1,gauss1,select0.75")
    args = parser.parse_args()
    dataset = datasets.load_all(args.data)
    model = LibrosaLogReg()
    audio = datasets.load_waveforms(dataset.items, model.sample_rate)
    x = model.transform(audio.waveforms).astype(np.float64)
    y = np.array([item.label for item in audio.items])
    speakers = np.array([f"{item.corpus}:{item.speaker}" for item in audio.items])
    corpora = np.array([item.corpus for item in audio.items])
    copies = None
    if args.augment:
        copies = {}
        for name in sorted(set(corpora)):
            waveforms = [audio.waveforms[i] for i in np.flatnonzero(corpora != name)]
            copies[name] = extract_augmented(waveforms, model.config, model._augmenter(waveforms), 1,
                                             cache=FeatureCache()).astype(np.float64)
    for variant in args.variants.split(","):
        result = run(variant, x, y, speakers, corpora, copies)
        print(variant, "  ".join(f"{k} {v:.3f}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
