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
from holotune.media import missing

ROOT = Path(__file__).resolve().parent.parent


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
    write_json({"faces": len(faces), "person_groups": len({f.subject for f in faces}), "splits": report.splits,
                "variants": args.variants, "metrics": metrics,
                "labels": "pseudo-labels: the stock Holistic on each clean canvas; occluders and low light synthetic"},
               args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
