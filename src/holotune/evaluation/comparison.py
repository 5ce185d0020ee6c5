"""Baseline vs fine-tuned on the same samples: means per condition, bootstrap intervals over identities, the gate.

The uncertainty that matters in a small test set is *which people are in it* (seed noise is much
smaller; see the reference experiment), so intervals resample test identities (the manifest's
``group``) with replacement, each time pooling the samples of the drawn identities; samples
without a group are their own identity.
"""

from __future__ import annotations

import numpy as np

from holotune.evaluation.scoring import SampleScores

LOWER_IS_BETTER = {"nme": True, "presence_rate": False}
"""Direction of each metric (``pck@*`` are higher-is-better)."""


class RegressionGateError(RuntimeError):
    """The fine-tuned model is worse than stock on the reference split by more than the tolerance."""


def lower_is_better(metric: str) -> bool:
    return LOWER_IS_BETTER.get(metric, not metric.startswith("pck"))


def _group_sums(values: np.ndarray, group_index: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-identity sum and count of the non-NaN values."""
    ok = ~np.isnan(values)
    sums = np.bincount(group_index[ok], weights=values[ok], minlength=n_groups)
    counts = np.bincount(group_index[ok], minlength=n_groups).astype(float)
    return sums, counts


def compare_metric(base: np.ndarray, new: np.ndarray, groups: list[str], *, n_boot: int = 2000,
                   seed: int = 0) -> dict:
    """Pooled means of ``base`` and ``new`` (N,) (same samples) and their difference, with bootstrap CI95.

    Returns ``baseline``, ``finetuned`` (means), ``*_ci95_low/high``, ``delta`` (new - base),
    ``delta_pct`` (relative to base, %), ``delta_pct_ci95_low/high`` and ``identities_improved``
    (identities whose mean moved in the better direction: decided by the caller's metric).
    """
    names, group_index = np.unique(np.asarray(groups, dtype=object), return_inverse=True)
    k = len(names)
    bs, bc = _group_sums(base, group_index, k)
    ns, nc = _group_sums(new, group_index, k)
    out = {"baseline": float(bs.sum() / max(bc.sum(), 1)), "finetuned": float(ns.sum() / max(nc.sum(), 1))}
    out["delta"] = out["finetuned"] - out["baseline"]
    out["delta_pct"] = 100.0 * out["delta"] / out["baseline"] if out["baseline"] else float("nan")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, k, size=(n_boot, k))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot_base = bs[picks].sum(1) / bc[picks].sum(1)
        boot_new = ns[picks].sum(1) / nc[picks].sum(1)
        boot_pct = 100.0 * (boot_new - boot_base) / boot_base
    for name, boot in (("baseline", boot_base), ("finetuned", boot_new), ("delta_pct", boot_pct)):
        boot = boot[np.isfinite(boot)]
        lo, hi = (np.percentile(boot, [2.5, 97.5]) if boot.size else (float("nan"), float("nan")))
        out[f"{name}_ci95_low"], out[f"{name}_ci95_high"] = float(lo), float(hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_identity = (ns / nc) - (bs / bc)
    out["identity_deltas"] = per_identity
    return out


def compare_scores(base: SampleScores, new: SampleScores, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """Every metric of :meth:`SampleScores.metrics`, baseline vs fine-tuned, on the same rows.

    Returns ``{"n", "identities", "baseline": {metric: mean}, "finetuned": {...}, "delta": {metric:
    abs change, metric_pct: relative %, metric_pct_ci95_low/high, ...}, "ci95": {...},
    "identities_improved": {metric: count}}``.
    """
    if base.sample_ids != new.sample_ids:
        raise ValueError("baseline and fine-tuned scores are not on the same samples")
    out: dict = {"n": len(base.sample_ids), "identities": len(set(base.groups)), "baseline": {}, "finetuned": {},
                 "delta": {}, "identities_improved": {}}
    base_m, new_m = base.metrics(), new.metrics()
    for metric in base_m:
        c = compare_metric(base_m[metric], new_m[metric], base.groups, n_boot=n_boot, seed=seed)
        out["baseline"][metric] = c["baseline"]
        out["baseline"][f"{metric}_ci95_low"], out["baseline"][f"{metric}_ci95_high"] = (
            c["baseline_ci95_low"], c["baseline_ci95_high"])
        out["finetuned"][metric] = c["finetuned"]
        out["finetuned"][f"{metric}_ci95_low"], out["finetuned"][f"{metric}_ci95_high"] = (
            c["finetuned_ci95_low"], c["finetuned_ci95_high"])
        out["delta"][metric] = c["delta"]
        if metric != "presence_rate":  # a rate's change is read in points; a relative change of a rate misleads
            out["delta"][f"{metric}_pct"] = c["delta_pct"]
            out["delta"][f"{metric}_pct_ci95_low"] = c["delta_pct_ci95_low"]
            out["delta"][f"{metric}_pct_ci95_high"] = c["delta_pct_ci95_high"]
        d = c["identity_deltas"]
        better = d < 0 if lower_is_better(metric) else d > 0
        out["identities_improved"][metric] = int(np.sum(better[np.isfinite(d)]))
    return out


def condition_splits(scores: SampleScores, reference_conditions: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Named row selections: each condition, ``shifted`` (all but the reference conditions, if both
    kinds exist), ``reference`` (the reference conditions; all rows if none carries one) and ``all``.

    Where the rows come from more than one domain (``scores.domains``, e.g. ``sharp`` and ``lfw``),
    each of those selections is repeated within each domain as ``<domain>/<name>`` (empty ones left out).
    """
    conditions = np.asarray(scores.conditions, dtype=object)
    out = {c: conditions == c for c in sorted(set(scores.conditions))}
    is_reference = np.isin(conditions, list(reference_conditions))
    if is_reference.any() and not is_reference.all():
        out["shifted"] = ~is_reference
    out["reference"] = is_reference if is_reference.any() else np.ones(len(conditions), dtype=bool)
    out["all"] = np.ones(len(conditions), dtype=bool)
    for domain, in_domain in domain_rows(scores).items():
        for name, keep in list(out.items()):
            if "/" not in name and (keep & in_domain).any():
                out[f"{domain}/{name}"] = keep & in_domain
    return out


def domain_rows(scores: SampleScores) -> dict[str, np.ndarray]:
    """Domain -> (N,) bool rows, when the rows span two or more named domains; else empty."""
    domains = np.asarray([d or "" for d in (scores.domains or [None] * len(scores.sample_ids))], dtype=object)
    names = sorted({d for d in domains if d})
    return {d: domains == d for d in names} if len(names) > 1 else {}


def check_gate(reference: dict, metric: str, tolerance_pct: float, allow_regression: bool,
               name: str = "reference") -> dict:
    """The forgetting gate on the reference split's comparison (from :func:`compare_scores`) named ``name``.

    Fails (``passed`` False) when ``metric`` got worse than stock by more than ``tolerance_pct``
    (relative %). Returns the gate record; raising is the caller's choice (after writing reports).
    """
    change = reference["delta"][f"{metric}_pct"]
    worse = change if lower_is_better(metric) else -change
    passed = bool(worse <= tolerance_pct)
    direction = "higher" if lower_is_better(metric) else "lower"
    message = (f"{name} split ({reference['n']} samples, {reference['identities']} identities): {metric} "
               f"{reference['baseline'][metric]:.3f} (stock) -> {reference['finetuned'][metric]:.3f} (fine-tuned), "
               f"{change:+.2f}%; the gate allows {tolerance_pct:g}% {direction}")
    return {"metric": metric, "tolerance_pct": tolerance_pct, "change_pct": change, "passed": passed,
            "allow_regression": allow_regression, "message": message}
