"""The prune stage's report: ``report.json`` and the line the stage prints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from holotune.pruning.measure import Footprint, MetricChange


@dataclass(frozen=True)
class PruneReport:
    """What the prune stage did and what it changed.

    Attributes:
        method, module, model: the method, the fine-tuning module and its factory model name.
        source: the pruned ``model.pt``, or ``stock``.
        sparsity_requested: ``prune.sparsity``.
        sparsity_reached: l1_norm: zeros in the pruned layers; channels: removed / prunable channel groups.
        layers: the pruned layers (l1_norm), or the layers allowed to lose channels (channels; a
            sentence when every layer is).
        note: what the method does and does not buy, in plain language.
        footprint: parameters, multiply-adds, file sizes and latency, before and after.
        metrics: the metric change on the scored split, or ``None`` (then ``metrics_note`` says why).
        metrics_note: why ``metrics`` is ``None``.
        out_dir: the directory holding ``model.pt``, ``model.onnx`` and ``report.json`` (not in the JSON).
        sparsity_detail: l1_norm only: :func:`holotune.pruning.weight_sparsity` of the pruned layers.
        channel_multiple, calibration, channels, sites: channels only: the multiple, where the
            calibration inputs came from, ``{"groups", "removed_groups", "pinned_channels"}``, and
            the sites that lost groups (``{"size", "removed", "shrinks"}``).
    """

    method: str
    module: str
    model: str
    source: str
    sparsity_requested: float
    sparsity_reached: float
    layers: list[str] | str
    note: str
    footprint: Footprint
    metrics: MetricChange | None
    metrics_note: str | None
    out_dir: Path
    sparsity_detail: dict | None = None
    channel_multiple: int | None = None
    calibration: str | None = None
    channels: dict | None = None
    sites: list[dict] | None = None

    @property
    def path(self) -> Path:
        """Where :meth:`to_dict` is written."""
        return self.out_dir / "report.json"

    def to_dict(self) -> dict:
        """The JSON of ``report.json``: the fields above (method-specific ones for that method only),
        with the footprint's entries at the top level and ``metrics_note`` only when there is one."""
        report = {"method": self.method, "module": self.module, "model": self.model, "source": self.source,
                  "sparsity_requested": self.sparsity_requested, "sparsity_reached": self.sparsity_reached,
                  "layers": self.layers}
        method_fields = {"sparsity_detail": self.sparsity_detail, "channel_multiple": self.channel_multiple,
                         "calibration": self.calibration, "channels": self.channels, "sites": self.sites}
        report.update((k, v) for k, v in method_fields.items() if v is not None)
        report["note"] = self.note
        report.update(self.footprint.to_dict())
        if self.metrics_note is not None:
            report["metrics_note"] = self.metrics_note
        report["metrics"] = self.metrics.to_dict() if self.metrics is not None else None
        return report

    def summary(self) -> str:
        """One line: sparsity, parameters, ONNX size, latency and the metric change."""
        f = self.footprint
        onnx = f.sizes["onnx"]
        if self.metrics is not None:
            scored = self.metrics.split
            change = ", ".join(f"{k} {v:+.2f}" for k, v in self.metrics.change.items())
        else:
            scored, change = "metrics", self.metrics_note or "not measured"
        return (f"prune: {self.method} {self.sparsity_requested:g} -> reached {self.sparsity_reached:.3f}; "
                f"params {f.params['before']:,} -> {f.params['after']:,}; ONNX {onnx['before']['bytes']:,} -> "
                f"{onnx['after']['bytes']:,} B (gzip {onnx['before']['gzip_bytes']:,} -> "
                f"{onnx['after']['gzip_bytes']:,}); latency {f.latency_ms['before']['median_ms']:.2f} -> "
                f"{f.latency_ms['after']['median_ms']:.2f} ms; {scored}: {change}; report: {self.path}")
