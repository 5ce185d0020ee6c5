"""The dataset writer: every source x condition x variant, rendered, JPEG-encoded and labelled."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from holotune.data.default.options import DefaultDataOptions
from holotune.data.default.render import render_variant
from holotune.data.default.sources import PhotoSource, lfw_sources, media_face_sources, photo_sources
from holotune.data.default.variants import CONDITIONS, VariantParams, sample_params

log = logging.getLogger(__name__)

JPEG_QUALITY = 92
"""The written files' quality: high enough to add little to the low-light capture's own JPEG (quality 30-80)."""
DECIMALS = 6
"""Rounding of written keypoints: keeps labels.jsonl byte-stable against float noise."""
SOURCES_FILE = "sources.json"
"""What a build was made of: people and faces per domain, and the optional media that were missing."""
AUGMENT_DECIMALS = 4
"""Rounding of the recorded variant parameters (``augment``): for reading, not for re-rendering."""


def build_default_data(out_dir: str | os.PathLike, options: DefaultDataOptions) -> Path:
    """Build the embedded default dataset (see :mod:`holotune.data.default` for what it is and its limits).

    Writes ``out_dir/images/<id>.jpg`` (JPEG quality 92; photos ``image_size`` px on the long side,
    LFW 192x192) and ``out_dir/labels.jsonl``, one JSON object per image, in a fixed order::

        {"id": "<subject>_<condition>_<variant>", "image": "images/<id>.jpg",
         "keypoints": [[x, y, z] * 543],   # normalized to the image; z in units of its width; 0 if unlabelled
         "mask": [543 x 0/1],              # 1 = labelled and inside the image
         "occluded": [543 x 0/1],          # 1 = under an opaque occluder (covering, sunglasses, hair, hand)
         "subject": "grace_hopper" | "astronaut" | "camera" | "lfw_017" ...,   # the identity group key
         "domain": "photo" | "lfw" | "sharp",   # PhotoSource.domain
         "condition": "clean" | "mask" | "low_light" | "both",
         "accessory": "none" | "mask:surgical" | "mask:scarf+clear_glasses+hand" ...,
         "source_image": "skimage.data.astronaut()" ..., "width": W, "height": H,
         "augment": {"jitter": {...}, "occluder": {...} | null, "low_light": {...} | null}}

    Each subject has every condition ``variants_per_condition`` times (LFW:
    ``lfw_variants_per_condition``; media faces: ``media_variants_per_condition``).
    ``out_dir/sources.json`` (:data:`SOURCES_FILE`) records the faces and person groups per domain
    and any optional media that were missing. Stale ``.jpg`` files in ``images/`` are removed. The
    teacher runs once per source image (the stock ONNX models are exported first if missing).

    Returns:
        The path of ``labels.jsonl``.
    """
    from holotune.media import missing
    from holotune.runtime.sessions import ensure_stock_models

    ensure_stock_models()
    sources = [(s, options.variants_per_condition) for s in photo_sources(options.image_size)]
    sources += [(s, options.lfw_variants_per_condition) for s in lfw_sources(options.lfw_faces)]
    absent = []
    if options.media_faces:
        absent = missing()
        sources += [(s, options.media_variants_per_condition) for s in media_face_sources(options.image_size)]
    labels = write_variants(out_dir, sources, options)
    _write_sources(Path(out_dir) / SOURCES_FILE, [s for s, _ in sources], options.media_faces, absent)
    return labels


def _write_sources(path: Path, sources: list[PhotoSource], media_faces: bool, absent: list[str]) -> None:
    domains: dict[str, dict] = {}
    for s in sources:
        d = domains.setdefault(s.domain, {"faces": 0, "groups": set()})
        d["faces"] += 1
        d["groups"].add(s.subject)
    record = {
        "domains": {k: {"faces": v["faces"], "groups": len(v["groups"])} for k, v in sorted(domains.items())},
        "media_faces": "off" if not media_faces else ("incomplete" if absent else "complete"),
        "missing_media": absent,
        "labels": "pseudo-labels: the stock model's output on the clean source image",
        "synthetic": "occluders, low light and geometric jitter are rendered; the photographs are real",
    }
    path.write_text(json.dumps(record, indent=2) + "\n")


def write_variants(out_dir: str | os.PathLike, sources: list[tuple[PhotoSource, int]],
                   options: DefaultDataOptions) -> Path:
    """Render every condition of each source ``variants`` times into ``out_dir`` (the layout and
    ``labels.jsonl`` rows of :func:`build_default_data`); returns the path of ``labels.jsonl``."""
    out = Path(out_dir)
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rows, written = [], set()
    for source, variants in sources:
        for condition in CONDITIONS:
            for v in range(variants):
                params = sample_params(_variant_rng(options.seed, source.key, condition, v), condition,
                                       options.distribution)
                r = render_variant(source.image, source.keypoints, source.mask, params, source.grey)
                sample_id = f"{source.name or source.subject}_{condition}_{v:02d}"
                name = f"{sample_id}.jpg"
                (images_dir / name).write_bytes(_jpeg(r.image, name))
                written.add(name)
                h, w = r.image.shape[:2]
                rows.append(json.dumps({
                    "id": sample_id, "image": f"images/{name}", "keypoints": _round(r.keypoints),
                    "mask": r.mask.astype(float).tolist(), "occluded": r.occluded.astype(float).tolist(),
                    "subject": source.subject, "domain": source.domain, "condition": condition,
                    "accessory": _accessory(params),
                    "source_image": source.source_image, "width": w, "height": h, "augment": recorded_params(params),
                }, allow_nan=False, separators=(",", ":")))
    labels = write_labels(out, rows, written)
    log.info("default data: %d images of %d subjects in %s", len(rows), len(sources), out)
    return labels


def write_labels(out: Path, rows: list[str], written: set[str]) -> Path:
    """Finish a build in ``out``: remove ``images/*.jpg`` not in ``written`` (stale from an earlier build)
    and write the JSON ``rows`` as ``labels.jsonl`` atomically (a partial file never replaces a whole one)."""
    for stale in (out / "images").glob("*.jpg"):
        if stale.name not in written:
            stale.unlink()
    labels = out / "labels.jsonl"
    tmp = labels.with_suffix(".jsonl.partial")
    tmp.write_text("".join(row + "\n" for row in rows))
    tmp.replace(labels)
    return labels


def _variant_rng(seed: int, source_key: int, condition: str, variant: int) -> np.random.Generator:
    """A generator per sample, so adding samples never changes the others."""
    return np.random.default_rng(np.random.SeedSequence([seed, source_key, CONDITIONS.index(condition), variant]))


def _jpeg(image: np.ndarray, name: str) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {name}")
    return buf.tobytes()


def _accessory(params: VariantParams) -> str:
    """``none``, or ``mask:<covering style>`` and the extras drawn, e.g. ``mask:surgical+sunglasses+hand``
    (in this order: ``sunglasses`` or ``clear_glasses``, ``hair``, ``hand``)."""
    occ = params.occluder
    if occ is None:
        return "none"
    extras = [] if occ.glasses is None else ["sunglasses" if occ.glasses.kind == "sunglasses" else "clear_glasses"]
    extras += [name for name, part in (("hair", occ.hair), ("hand", occ.hand)) if part is not None]
    return "+".join([f"mask:{occ.covering.style}", *extras])


def _round(values: np.ndarray) -> list:
    return np.round(values.astype(np.float64), DECIMALS).tolist()


def recorded_params(params, drop_none: bool = False) -> dict:
    """A variant's parameter dataclass as the ``augment`` record of a labels row: floats rounded to
    :data:`AUGMENT_DECIMALS`, seeds and the condition left out (and ``None`` values, with ``drop_none``)."""
    def clean(v):
        if isinstance(v, float):
            return round(v, AUGMENT_DECIMALS)
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if not k.endswith("seed") and not (drop_none and x is None)}
        return v

    return clean({k: v for k, v in asdict(params).items() if k != "condition"})
