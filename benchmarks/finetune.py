"""Fine-tuning throughput and memory per module: training samples/s and peak RSS on this machine.

For each module (face_mesh, hands, pose): the finetune stage's settings from ``params.yaml`` (frozen
trunk, LoRA r=8, augmentation, loss weights, seed), except the ``branch`` placement (the largest one
whose trunk features can be cached) and batch 16; Lightning on CPU, with ``cache_dataset`` off and
on. Each configuration runs in its own process, so peak RSS (``ru_maxrss``) is that configuration's
own. Samples/s is measured over the epochs after the first (with the cache on, the first epoch fills it).

Data: the embedded default data for face_mesh and pose (the ingest stage's build, with 60 LFW
faces); for hands, which it has no labels for, synthetic hand labels on the sample photos (the
numbers measure the training loop, not accuracy).

    .venv/bin/python benchmarks/finetune.py [--epochs 4] [--samples 96] [--modules face_mesh,hands,pose]
                                            [--json-out PATH]
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
from dataclasses import replace
from pathlib import Path

import numpy as np
from report import ROOT, add_json_out, utc_now, write_json

from holotune.config import read_params

MODULES = ("face_mesh", "hands", "pose")
PLACEMENT = "branch"
BATCH_SIZE = 16
LFW_FACES = 60  # of the default data's 100: a shorter build, as many images as the runs need


def _labelled_images(module: str, n: int, params: dict):
    from PIL import Image

    from holotune.config import build
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
    from holotune.landmarks import PARTS

    options = build(DefaultDataOptions, {**params["ingest"]["default_data"], "lfw_faces": LFW_FACES},
                    "ingest.default_data")
    part = PARTS["face" if module == "face_mesh" else "pose"]
    with tempfile.TemporaryDirectory() as tmp:  # the images are read into memory
        folder = Path(tmp)
        labels = build_default_data(folder, options)
        rows = [json.loads(line) for line in labels.read_text().splitlines()]
        rows = [r for r in rows if np.asarray(r["mask"])[part].mean() >= 0.5]  # images that carry this part
        images = [LabelledImage((folder / r["image"]).read_bytes(), np.asarray(r["keypoints"], np.float32),
                                np.asarray(r["mask"], np.float32), reference=r["condition"] == "clean") for r in rows]
    return [images[i % len(images)] for i in range(n)]


def run_one(module: str, cache: bool, epochs: int, samples: int) -> dict:
    """Train one configuration in this process; returns its figures."""
    import pytorch_lightning as pl
    import torch

    from holotune.config import with_overrides
    from holotune.training.data import CropDataset
    from holotune.training.finetune import FinetuneOptions, build_model
    from holotune.training.module import LandmarkLitModule

    torch.set_num_threads(os.cpu_count() or 1)
    params = read_params(ROOT / "params.yaml")
    options = FinetuneOptions.from_config(with_overrides(params, {
        "module.name": module, "finetune.lora_placement": PLACEMENT, "finetune.epochs": epochs,
        "finetune.batch_size": BATCH_SIZE}))
    hparams, run = options.hparams, replace(options.run, cache_dataset=cache)
    net = build_model(options.model)
    dataset = CropDataset(_labelled_images(module, samples, params), module, run.augment, hparams.seed,
                          cache_images=run.cache_dataset, views=run.cache_views if cache else None,
                          negatives=run.negative_fraction)
    loader = torch.utils.data.DataLoader(dataset, batch_size=hparams.batch_size, shuffle=True, drop_last=True)
    lit = LandmarkLitModule(net, module, hparams, cache_features=cache)
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
    per_epoch = len(loader) * hparams.batch_size
    steady = epoch_times[1:] or epoch_times
    return {
        "module": module, "cache": cache, "samples_per_epoch": per_epoch, "epochs": epochs,
        "first_epoch_s": epoch_times[0], "samples_per_s": per_epoch / float(np.median(steady)),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "trainable_params": sum(p.numel() for p in lit.parameters() if p.requires_grad),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (>= 2: the first fills the cache)")
    parser.add_argument("--samples", type=int, default=96, help="training samples per epoch")
    parser.add_argument("--modules", default=",".join(MODULES), help="comma-separated modules to run")
    add_json_out(parser, "finetune")
    parser.add_argument("--one", nargs=2, metavar=("MODULE", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1] == "1", args.epochs, args.samples)))
        return

    rows = []
    for module in [m.strip() for m in args.modules.split(",") if m.strip()]:
        for cache in (False, True):
            cmd = [sys.executable, __file__, "--one", module, str(int(cache)), "--epochs", str(args.epochs),
                   "--samples", str(args.samples)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    rank = read_params(ROOT / "params.yaml")["finetune"]["lora_rank"]
    print(f"LoRA r={rank} ({PLACEMENT}), batch {BATCH_SIZE}, {os.cpu_count()} CPUs; "
          f"samples/s over epochs 2..{args.epochs}")
    print(f"{'module':<11}{'cache':>6}{'samples/s':>11}{'1st epoch s':>13}{'peak RSS MB':>13}{'trainable':>11}")
    for r in rows:
        print(f"{r['module']:<11}{'on' if r['cache'] else 'off':>6}{r['samples_per_s']:>11.1f}"
              f"{r['first_epoch_s']:>13.1f}{r['peak_rss_mb']:>13.0f}{r['trainable_params']:>11,}")
    write_json({"rows": rows, "cpu_count": os.cpu_count(), "timestamp": utc_now()}, args.json_out)


if __name__ == "__main__":
    main()
