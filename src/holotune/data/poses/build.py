"""The pose dataset writer: every person x condition x variant, rendered, JPEG-encoded and labelled."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from holotune.data.default.build import recorded_params, write_labels
from holotune.data.poses.options import PoseDataOptions
from holotune.data.poses.shifts import CONDITIONS, render_shift, sample_shift
from holotune.data.poses.sources import PersonSource, Rejected, media_person_sources, sample_person_sources

log = logging.getLogger(__name__)

JPEG_QUALITY = 92
DECIMALS = 6
SOURCES_FILE = "sources.json"
"""What a build was made of: people and groups per domain, rejected detections, missing media."""


def build_pose_data(out_dir: str | os.PathLike, options: PoseDataOptions) -> Path:
    """Build the pose default dataset (see :mod:`holotune.data.poses`); returns the path of ``labels.jsonl``.

    Writes ``out_dir/images/<id>.jpg`` (``image_size`` square, JPEG quality 92), ``out_dir/labels.jsonl``
    (one row per image, the face data's schema plus ``view`` and ``person``)::

        {"id": "<name>_<condition>_<variant>", "image": "images/<id>.jpg",
         "keypoints": [[x, y, z] * 543], "mask": [543 x 0/1], "occluded": [543 x 0/1],
         "subject": "<group key>", "person": "...", "domain": "photo" | "child" | "video",
         "view": "front" | "side", "condition": "clean" | "low_res" | ..., "source_image": "...",
         "width": S, "height": S, "person_px": <person height in the capture>, "augment": {...}}

    and ``out_dir/sources.json`` (:data:`SOURCES_FILE`). Stale ``.jpg`` files in ``images/`` are removed.
    """
    from holotune.data.poses.sources import PersonFinder, _teacher
    from holotune.media import POSE_SOURCES, SOURCES, missing

    rejected: list[Rejected] = []
    absent: list[str] = []
    with _teacher(None) as teacher:
        finder = PersonFinder()
        sources = sample_person_sources(options.image_size, teacher, finder, rejected)
        if options.media:
            absent = missing(SOURCES + POSE_SOURCES)
            for line in absent:
                log.warning("pose data: optional media missing: %s", line)
            sources += media_person_sources(options.image_size, teacher, finder, rejected)
    labels = write_variants(out_dir, sources, options)
    _write_sources(Path(out_dir) / SOURCES_FILE, sources, rejected, options.media, absent, labels)
    return labels


def _write_sources(path: Path, sources: list[PersonSource], rejected: list[Rejected], media: bool,
                   absent: list[str], labels: Path) -> None:
    domains: dict[str, dict] = {}
    for s in sources:
        d = domains.setdefault(s.domain, {"canvases": 0, "people": set(), "groups": set(), "side_views": 0})
        d["canvases"] += 1
        d["people"].add(s.person)
        d["groups"].add(s.subject)
        d["side_views"] += s.view == "side"
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    record = {
        "domains": {k: {"canvases": v["canvases"], "people": len(v["people"]), "groups": sorted(v["groups"]),
                        "side_views": v["side_views"]} for k, v in sorted(domains.items())},
        "images_per_condition": dict(sorted(Counter(r["condition"] for r in rows).items())),
        "canvases": [{"name": s.name, "subject": s.subject, "person": s.person, "domain": s.domain, "view": s.view,
                      "source_image": s.source_image} for s in sources],
        "rejected": [asdict(r) for r in rejected],
        "media": "off" if not media else ("incomplete" if absent else "complete"),
        "missing_media": absent,
        "labels": "pseudo-labels: the stock Holistic's output on the clean person canvas",
        "real": "the photographs, the video frames and the side views (people seen side on in them)",
        "synthetic": "low resolution, motion blur, low light, the cut-off framing, the occluding patches and the jitter",
    }
    path.write_text(json.dumps(record, indent=2) + "\n")


def write_variants(out_dir: str | os.PathLike, sources: list[PersonSource], options: PoseDataOptions) -> Path:
    """Render every condition of each source ``variants_per_condition`` times into ``out_dir``."""
    out = Path(out_dir)
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rows, written = [], set()
    for source in sources:
        for condition in CONDITIONS:
            for v in range(options.variants_per_condition):
                rng = np.random.default_rng(np.random.SeedSequence([options.seed, source.key,
                                                                    CONDITIONS.index(condition), v]))
                shift = sample_shift(rng, condition, options.distribution)
                r = render_shift(source.image, source.keypoints, source.mask, shift, source.grey)
                sample_id = f"{source.name}_{condition}_{v:02d}"
                name = f"{sample_id}.jpg"
                ok, buf = cv2.imencode(".jpg", cv2.cvtColor(r.image, cv2.COLOR_RGB2BGR),
                                       [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if not ok:
                    raise RuntimeError(f"JPEG encoding failed for {name}")
                (images_dir / name).write_bytes(buf.tobytes())
                written.add(name)
                h, w = r.image.shape[:2]
                rows.append(json.dumps({
                    "id": sample_id, "image": f"images/{name}",
                    "keypoints": np.round(r.keypoints.astype(np.float64), DECIMALS).tolist(),
                    "mask": r.mask.astype(float).tolist(), "occluded": r.occluded.astype(float).tolist(),
                    "subject": source.subject, "person": source.person, "domain": source.domain, "view": source.view,
                    "condition": condition, "source_image": source.source_image, "width": w, "height": h,
                    "person_px": round(r.person_px, 2), "augment": recorded_params(shift, drop_none=True),
                }, allow_nan=False, separators=(",", ":")))
    labels = write_labels(out, rows, written)
    log.info("pose data: %d images of %d person canvases in %s", len(rows), len(sources), out)
    return labels
