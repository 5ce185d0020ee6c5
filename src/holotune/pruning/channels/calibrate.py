"""Calibration: model inputs, the channel statistics of the activations they produce, and the refit.

With calibration inputs (the stage uses the train split's crops), channel groups are scored by what
the layers reading them lose (:mod:`holotune.pruning.channels.score`), and each reading layer's
weights absorb a least-squares fit of the removed channels on the kept ones
(:func:`reconstruct_readers`). Measured on face_mesh's test split of the default data (stock NME
6.75%): 6.79% / 10.5% at sparsity 0.1 / 0.25, where weight L1 alone gives 11.1% / 38.2%
(``benchmarks/prune.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from holotune.models.spec import get_module
from holotune.models.tflite_module import TFLiteModule
from holotune.pruning.channels.graph import is_regular


def calibration_inputs(module: str, shards_dir: str | Path | None, manifest: str | Path | None,
                       count: int) -> tuple[torch.Tensor, str]:
    """Up to ``count`` model inputs for channel statistics, and where they came from.

    The train split's crops (MediaPipe's tracking ROIs, no augmentation, evenly spaced over the
    split) when ``shards_dir`` has labelled ``module`` parts in ``train-*`` shards; otherwise the
    real photo crops the models are verified on (:func:`holotune.samples.sample_crops`) and their
    mirror images, which for hands contain no hand (no shipped photo has one).

    Returns:
        ((N, 3, H, W) float32 in the model's input range, a one-line description).
    """
    if shards_dir is not None:
        from holotune.evaluation.scoring import split_dataset

        try:
            dataset = split_dataset(shards_dir, "train", manifest, module)
        except ValueError:  # no labelled part of this module in the train split
            dataset = None
        if dataset is not None:  # evenly spaced; evaluation crops have no negatives
            picked = dict.fromkeys(int(j) for j in np.linspace(0, len(dataset) - 1, min(count, len(dataset))))
            images = torch.stack([dataset[i]["image"] for i in picked])
            return images, f"{len(images)} crops of the train split in {shards_dir}"
    from holotune.samples import sample_crops

    nhwc, _ = sample_crops(get_module(module).model_spec)
    x = torch.from_numpy(np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)))
    x = torch.cat([x, x.flip(-1)])[:count]
    return x, f"{len(x)} sample photo crops and mirrors (no {module} train split in {shards_dir})"


@dataclass
class ChannelStats:
    """Second-order statistics of one activation tensor's channels over calibration inputs.

    Attributes:
        mean: (C,) per-channel mean, float64.
        cov: (C, C) covariance over samples and spatial positions, float64.
    """

    mean: torch.Tensor
    cov: torch.Tensor

    @property
    def ridge(self) -> float:
        # Relative to the channels' mean variance: enough to keep fits well posed when channels are
        # dead (zero variance, common after ReLU6) or duplicated, too small to bias them.
        return 1e-3 * float(self.cov.diagonal().mean().clamp_min(1e-12))

    def residual_std(self) -> torch.Tensor:
        """(C,) std of each channel that a linear fit on all the others leaves unexplained: ``1/sqrt(P_cc)``."""
        precision = torch.linalg.inv(self.cov + self.ridge * torch.eye(len(self.mean), dtype=self.cov.dtype))
        return precision.diagonal().clamp_min(1e-30).rsqrt()


@torch.no_grad()
def activation_stats(model: TFLiteModule, inputs: torch.Tensor, max_positions: int = 4096) -> dict[int, ChannelStats]:
    """Channel statistics of every tensor a regular conv or linear reads (the model input excepted).

    Args:
        inputs: (N, C, H, W) in the model's input range; run one at a time (pose's activations
            reach ~100 MB per sample).
        max_positions: spatial positions sampled per input and tensor (a fixed stride): channel
            statistics need thousands of rows, not the 16k of a 128x128 map.

    Returns:
        ``{tensor id: ChannelStats}``.
    """
    read = {s.op.inputs[0] for s in model.steps if s.layer and is_regular(getattr(model, s.layer))}
    read.discard(model.input_tensor)
    acc: dict[int, list] = {t: [0, 0.0, 0.0] for t in read}
    for x in inputs.split(1):
        env = model.activations(x)
        for t in read:
            a = env[t]
            rows = a.permute(0, 2, 3, 1).reshape(-1, a.shape[1]) if a.dim() == 4 else a.reshape(-1, a.shape[-1])
            rows = rows[:: max(1, len(rows) // max_positions)].double()  # (M, C)
            acc[t][0] += len(rows)
            acc[t][1] = acc[t][1] + rows.sum(0)
            acc[t][2] = acc[t][2] + rows.T @ rows
    stats = {}
    for t, (count, total, outer) in acc.items():
        mean = total / count
        stats[t] = ChannelStats(mean, outer / count - torch.outer(mean, mean))
    return stats


@torch.no_grad()
def reconstruct_readers(model: TFLiteModule, keep: dict[int, list[int]], stats: dict[int, ChannelStats]) -> None:
    """Fold what the removed channels carried into the kept channels' weights of every layer reading them.

    Per tensor, the removed channels ``R`` are fitted on the kept ones ``K`` by ridge least squares
    over the calibration statistics, ``a_R ~ B a_K + beta``; each regular conv / linear reading the
    tensor then gets ``W[:, K] += W[:, R] B`` (per kernel tap) and ``bias += sum_taps(W[:, R]) beta``.
    A constant channel is thus folded into the bias exactly (for larger-than-1x1 kernels, away from
    the zero-padded border), a redundant one into its look-alikes. Call on the unpruned weights,
    before :func:`~holotune.pruning.channels.plan.apply_channel_plan`.
    """
    fits = {}
    for t, kept in keep.items():
        if t not in stats:
            continue
        st = stats[t]
        k = torch.as_tensor(kept, dtype=torch.long)
        removed = torch.ones(len(st.mean), dtype=torch.bool)
        removed[k] = False
        r = removed.nonzero().flatten()
        cov_kk = st.cov[k][:, k] + st.ridge * torch.eye(len(k), dtype=st.cov.dtype)
        b = torch.linalg.solve(cov_kk, st.cov[k][:, r]).T  # (R, K)
        beta = st.mean[r] - b @ st.mean[k]  # (R,)
        fits[t] = (k, r, b.float(), beta.float())
    for s in model.steps:
        if s.layer is None or s.op.inputs[0] not in fits or not is_regular(getattr(model, s.layer)):
            continue  # depthwise convs and PReLUs lose the channel outright (they are coupled to it)
        layer = getattr(model, s.layer)
        k, r, b, beta = fits[s.op.inputs[0]]
        w = layer.weight if layer.weight.dim() == 4 else layer.weight[:, :, None, None]  # (out, in, kh, kw) view
        w_r = w[:, r]  # (out, R, kh, kw), a copy
        w[:, k] += torch.einsum("orhw,rk->okhw", w_r, b)
        if layer.bias is not None:
            layer.bias += w_r.sum((2, 3)) @ beta
