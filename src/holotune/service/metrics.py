"""A job's live training metrics, read from the TensorBoard event files the finetune stage writes.

Reading the events (rather than hooking the trainer) keeps the service independent of the
training code: whatever Lightning logs shows up here and in TensorBoard alike.
"""

from __future__ import annotations

from pathlib import Path


def read_scalars(tensorboard_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series under ``tensorboard_dir`` (all runs merged, in file order): tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root = Path(tensorboard_dir)
    series: dict[str, list[tuple[int, float]]] = {}
    if not root.is_dir():
        return series
    for run_dir in sorted({p.parent for p in root.rglob("events.out.tfevents.*")}):
        events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
        events.Reload()
        for tag in events.Tags().get("scalars", []):
            series.setdefault(tag, []).extend((e.step, float(e.value)) for e in events.Scalars(tag))
    return series


def latest_metrics(tensorboard_dir: str | Path) -> dict:
    """The latest value of each metric, in the original API's names plus every logged tag.

    Returns:
        ``loss``: the last epoch's training loss (the last step's while the first epoch runs),
        ``val_loss``: the last validation loss, ``epoch``: epochs completed, ``step``: the last
        global step, ``metrics``: tag -> latest value (``train/nme``, ``val/nme``, ...); ``None``
        where nothing was logged yet.
    """
    series = read_scalars(tensorboard_dir)

    def last(tag: str) -> float | None:
        return series[tag][-1][1] if series.get(tag) else None

    steps = [s for values in series.values() for s, _ in values]
    return {
        "loss": last("train/loss_epoch") if series.get("train/loss_epoch") else last("train/loss_step"),
        "val_loss": last("val/loss"),
        "epoch": len(series.get("train/loss_epoch", [])),
        "step": max(steps) if steps else None,
        "metrics": {tag: values[-1][1] for tag, values in sorted(series.items()) if tag != "hp_metric"},
    }
