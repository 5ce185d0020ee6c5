"""Fine-tuning throughput and memory per module: training samples/s and peak RSS on this machine.

For each module (face_mesh, hands, pose): frozen trunk, LoRA r=8 on the ``branch`` placement (the
largest one whose trunk features can be cached), batch 16, default augmentation, Lightning on CPU,
with ``cache_dataset`` off and on. Each configuration runs in its own process, so peak RSS
(``ru_maxrss``) is that configuration's own. Samples/s is measured over the epochs after the first
(with the cache on, the first epoch fills it).

Data: the embedded default data for face_mesh and pose; for hands, which it has no labels for,
synthetic hand labels on the sample photos (the numbers measure the training loop, not accuracy).

    .venv/bin/python benchmarks/finetune.py [--epochs 4] [--samples 96] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

MODULES = ("face_mesh", "hands", "pose")


def _labelled_images(module: str, n: int):
    from PIL import Image

    from holotune.data.default import DefaultDataOptions, build_default_data
    from holotune.samples import sample_images
    from holotune.training.data import LabelledImage

    if module == "hands":
        # Synthetic open-hand labels (21 points) on real photos: enough to exercise the loop.
        u = np.array([0.5, .38, .3, .24, .18, .4, .38, .37, .36, .5, .5, .5, .5, .6, .61, .62, .63, .7, .73, .75, .77])
        v = np.array([.9, .8, .7, .62, .55, .55, .4, .3, .22, .53, .36, .26, .18, .55, .4, .31, .24, .6, .5, .43, .37])
        photos = list(sample_images().values())
        images = []
        for i in range(n):
            kp = np.zeros((543, 3), np.float32)
            kp[501:522, 0] = 0.5 + (u - 0.5) * 0.3 + 0.01 * (i % 5)
            kp[501:522, 1] = 0.45 + (v - 0.5) * 0.3
            mask = np.zeros(543, np.float32)
            mask[501:522] = 1
            buffer = io.BytesIO()
            Image.fromarray(photos[i % len(photos)]).save(buffer, format="JPEG", quality=90)
            images.append(LabelledImage(buffer.getvalue(), kp, mask, reference=i % 2 == 0))
        return images
    folder = Path(tempfile.mkdtemp())
    labels = build_default_data(folder, DefaultDataOptions(seed=0, variants_per_condition=3, lfw_faces=60,
                                                           lfw_variants_per_condition=3))
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    from holotune.landmarks import PARTS

    part = PARTS["face" if module == "face_mesh" else "pose"]
    rows = [r for r in rows if np.asarray(r["mask"])[part].mean() >= 0.5]  # images that carry this part
    images = [LabelledImage((folder / r["image"]).read_bytes(), np.asarray(r["keypoints"], np.float32),
                            np.asarray(r["mask"], np.float32), reference=r["condition"] == "clean") for r in rows]
    return [images[i % len(images)] for i in range(n)]


def run_one(module: str, cache: bool, epochs: int, samples: int) -> dict:
    """Train one configuration in this process; returns its figures."""
    import pytorch_lightning as pl
    import torch

    from holotune.adapters import LoraOptions
    from holotune.data.augment import AugmentOptions
    from holotune.training.data import CropDataset
    from holotune.training.finetune import ModelOptions, build_model
    from holotune.training.module import LandmarkLitModule, TrainHParams

    torch.set_num_threads(os.cpu_count() or 1)
    net = build_model(ModelOptions(module, LoraOptions(r=8, placement="branch")))
    dataset = CropDataset(_labelled_images(module, samples), module, AugmentOptions(), cache_images=cache,
                          views=1 if cache else None)
    loader = torch.utils.data.DataLoader(dataset, batch_size=16, shuffle=True, drop_last=True)
    lit = LandmarkLitModule(net, module, TrainHParams(epochs=epochs, batch_size=16), cache_features=cache)
    epoch_times: list[float] = []

    class Clock(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            self.start = time.perf_counter()
            dataset.set_epoch(trainer.current_epoch)

        def on_train_epoch_end(self, trainer, pl_module):
            epoch_times.append(time.perf_counter() - self.start)

    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", callbacks=[Clock()])
    trainer.fit(lit, loader)
    per_epoch = len(loader) * 16
    steady = epoch_times[1:] or epoch_times
    return {
        "module": module, "cache": cache, "samples_per_epoch": per_epoch, "epochs": epochs,
        "first_epoch_s": epoch_times[0], "samples_per_s": per_epoch / float(np.median(steady)),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "trainable_params": sum(p.numel() for p in lit.parameters() if p.requires_grad),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--json-out", default=str(Path(__file__).parent / "results" / "finetune.json"))
    parser.add_argument("--one", nargs=2, metavar=("MODULE", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1] == "1", args.epochs, args.samples)))
        return

    rows = []
    for module in MODULES:
        for cache in (False, True):
            cmd = [sys.executable, __file__, "--one", module, str(int(cache)), "--epochs", str(args.epochs),
                   "--samples", str(args.samples)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"LoRA r=8 (branch), batch 16, {os.cpu_count()} CPUs; samples/s over epochs 2..{args.epochs}")
    print(f"{'module':<11}{'cache':>6}{'samples/s':>11}{'1st epoch s':>13}{'peak RSS MB':>13}{'trainable':>11}")
    for r in rows:
        print(f"{r['module']:<11}{'on' if r['cache'] else 'off':>6}{r['samples_per_s']:>11.1f}"
              f"{r['first_epoch_s']:>13.1f}{r['peak_rss_mb']:>13.0f}{r['trainable_params']:>11,}")
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "cpu_count": os.cpu_count(),
                               "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
