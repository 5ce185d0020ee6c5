"""Data throughput on this machine: auto-labelling, the default-data build, and TFRecord IO.

Auto-labelling: images/s of the ``ingest`` teacher on the sample photos, for ``holotune`` (the ONNX
Runtime Holistic) and ``mediapipe`` (a fresh ``mediapipe.solutions.holistic`` per image, as ingest
runs it), and of :func:`holotune.data.default.build_default_data` with the ingest stage's options
(``params.yaml``'s ``ingest.default_data``; written images/s).

TFRecord IO (no TensorFlow): write, sequential and random read, GZIP; and CRC32C.

``--records`` records (default 500), each a real JPEG (skimage's astronaut, 512x512, quality 90) and
random keypoints + mask, go through:

* ``write``: :func:`write_shards` (encode the Example, frame, CRC, atomic rename), 100 per shard,
* ``read_seq``: :func:`read_records` (framing, data CRC verified, Example decoded),
* ``read_raw``: :func:`iter_tfrecord` alone (framing and CRCs, no decode),
* ``index``: :func:`build_index` over the shards (headers only),
* ``read_random``: ``TFRecordDataset`` in a random order (pread, CRCs verified, decode),
* ``write_gzip`` / ``read_gzip``: the same with ``compression="GZIP"``,

and CRC32C on its own (``google-crc32c`` and the pure-Python table loop it falls back to). MB/s count the
uncompressed record bytes (file size of the uncompressed shards) for every row, so rows compare;
files sit in the page cache (a temp folder), so reads measure CPU, not disk. Each figure is the
median of ``--repeats`` runs in one process.

    .venv/bin/python benchmarks/data.py [--records 500] [--repeats 5] [--label-images 24] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from report import ROOT, add_json_out, utc_now, write_json

from holotune.config import build, read_params
from holotune.data.tfrecord import (
    KeypointRecord,
    build_index,
    crc32c,
    iter_tfrecord,
    read_records,
    write_shards,
)
from holotune.data.tfrecord.datasets import TFRecordDataset
from holotune.data.tfrecord.framing import _crc32c_python
from holotune.landmarks import NUM_KEYPOINTS
from holotune.runtime.sessions import ensure_stock_models
from holotune.samples import sample_images

SHARD_SIZE = 100


def jpeg_of_astronaut(quality: int = 90) -> bytes:
    rgb = sample_images()["astronaut"]
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("cv2.imencode failed")
    return buf.tobytes()


def make_records(n: int, image: bytes) -> list[KeypointRecord]:
    rng = np.random.default_rng(0)
    return [
        KeypointRecord(
            image=image,
            keypoints=rng.random((NUM_KEYPOINTS, 3), dtype=np.float32),
            mask=np.ones(NUM_KEYPOINTS, dtype=np.float32),
            label=i % 4,
            label_name=f"class{i % 4}",
            sample_id=f"bench-{i:05d}",
        )
        for i in range(n)
    ]


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def labelling_rates(n_images: int, default_data: dict) -> dict:
    """Images/s of each ingest teacher, and of the default-data build with ``default_data``'s options."""
    from holotune.data.default import DefaultDataOptions, build_default_data
    from holotune.data.ingest import Teacher

    ensure_stock_models()
    photos = list(sample_images().values())
    images = [photos[i % len(photos)] for i in range(n_images)]
    rates = {}
    for kind in ("holotune", "mediapipe"):
        teacher = Teacher(kind)
        teacher.label(images[0])  # warm-up: sessions / graph initialisation
        start = time.perf_counter()
        for image in images:
            teacher.label(image)
        rates[f"teacher_{kind}_images_per_s"] = n_images / (time.perf_counter() - start)
        teacher.close()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        labels = build_default_data(tmp, build(DefaultDataOptions, default_data, "ingest.default_data"))
        seconds = time.perf_counter() - start
        rates["default_data_images"] = sum(1 for _ in labels.open())
        rates["default_data_images_per_s"] = rates["default_data_images"] / seconds
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--label-images", type=int, default=24, help="images per teacher for auto-labelling")
    add_json_out(parser, "data")
    args = parser.parse_args()
    default_data = read_params(ROOT / "params.yaml")["ingest"]["default_data"]  # the ingest stage's build

    labelling = labelling_rates(args.label_images, default_data)

    image = jpeg_of_astronaut()
    records = make_records(args.records, image)
    n = len(records)
    rows: dict[str, dict] = {}

    with tempfile.TemporaryDirectory() as tmp:
        plain, gz = Path(tmp) / "plain", Path(tmp) / "gzip"
        seconds = timed(lambda: write_shards(records, plain, "bench", SHARD_SIZE), args.repeats)
        shards = sorted(plain.glob("*.tfrecord"))
        total = sum(p.stat().st_size for p in shards)
        rows["write"] = {"seconds": seconds}
        rows["read_seq"] = {"seconds": timed(lambda: sum(1 for _ in read_records(plain)), args.repeats)}
        rows["read_raw"] = {
            "seconds": timed(lambda: sum(1 for p in shards for _ in iter_tfrecord(p)), args.repeats)
        }
        rows["index"] = {"seconds": timed(lambda: [build_index(p) for p in shards], args.repeats)}
        dataset = TFRecordDataset(plain)
        order = np.random.default_rng(1).permutation(len(dataset)).tolist()
        rows["read_random"] = {"seconds": timed(lambda: [dataset[i] for i in order], args.repeats)}
        dataset.close()
        rows["write_gzip"] = {
            "seconds": timed(lambda: write_shards(records, gz, "bench", SHARD_SIZE, "GZIP"), args.repeats)
        }
        rows["read_gzip"] = {"seconds": timed(lambda: sum(1 for _ in read_records(gz)), args.repeats)}
        gzip_total = sum(p.stat().st_size for p in gz.glob("*.tfrecord"))
        checked = [r.sample_id for r in read_records(plain)] == [r.sample_id for r in records]
        checked &= [r.sample_id for r in read_records(gz)] == [r.sample_id for r in records]
        if not checked:
            raise RuntimeError("records read back differ from those written")

    for row in rows.values():
        row["records_per_s"] = n / row["seconds"]
        row["mb_per_s"] = total / row["seconds"] / 1e6

    payload = os.urandom(1 << 20)
    crc = {
        "library_1MiB_mb_per_s": len(payload) / timed(lambda: crc32c(payload), 20) / 1e6,
        "library_jpeg_mb_per_s": len(image) / timed(lambda: crc32c(image), 50) / 1e6,
        "python_64KiB_mb_per_s": 65536 / timed(lambda: _crc32c_python(payload[:65536]), 3) / 1e6,
    }

    report = {
        "records": n,
        "jpeg_bytes": len(image),
        "record_bytes_mean": total / n,
        "uncompressed_bytes": total,
        "gzip_bytes": gzip_total,
        "shard_size": SHARD_SIZE,
        "rows": rows,
        "crc32c": crc,
        "labelling": labelling,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "timestamp": utc_now(),
    }
    print(f"{n} records, JPEG {len(image) / 1e3:.1f} kB, record {total / n / 1e3:.1f} kB, "
          f"GZIP {gzip_total / total:.1%} of uncompressed; median of {args.repeats}")
    print(f"{'':<12} {'records/s':>10} {'MB/s':>8} {'ms':>8}")
    for name, row in rows.items():
        print(f"{name:<12} {row['records_per_s']:>10.0f} {row['mb_per_s']:>8.1f} {row['seconds'] * 1e3:>8.1f}")
    print("crc32c MB/s: " + ", ".join(f"{k.removesuffix('_mb_per_s')} {v:.0f}" for k, v in crc.items()))
    print(f"auto-labelling images/s: holotune teacher {labelling['teacher_holotune_images_per_s']:.1f}, "
          f"mediapipe teacher {labelling['teacher_mediapipe_images_per_s']:.1f}; default data build "
          f"{labelling['default_data_images']} images at {labelling['default_data_images_per_s']:.1f} images/s")
    write_json(report, args.json_out)


if __name__ == "__main__":
    main()
