"""The ``holotune`` command line.

    holotune models list [--json]
    holotune models verify [NAME ...] [--json] [--tolerance T] [--no-onnx] [--onnx-dir DIR]

Exit codes: 0 success, 1 a check failed, 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys

from holotune import __version__


def _models_list(args: argparse.Namespace) -> int:
    from holotune.models import create_model, list_models, tflite_path

    rows = []
    for name in list_models():
        model = create_model(name)
        rows.append(
            {
                "name": name,
                "file": str(tflite_path(name)),
                "params": sum(p.numel() for p in model.parameters()),
                "input_shape": [1, *model.input_shape],
                "input_range": list(model.spec.input_range),
                "outputs": {o.name: {"shape": list(o.shape), "meaning": o.meaning} for o in model.spec.outputs},
                "head_layers": model.head_layers,
                "features": model.feature_names,
                "module": model.spec.module,
            }
        )
    if args.json:
        print(json.dumps({"models": rows}, indent=2))
        return 0
    print(f"{'model':<28}{'params':>11}  {'input (NCHW)':<18}{'outputs -> final head layer'}")
    for r in rows:
        heads = ", ".join(f"{o}->{layers[-1]}" for o, layers in r["head_layers"].items())
        shape = "x".join(str(v) for v in r["input_shape"])
        print(f"{r['name']:<28}{r['params']:>11,}  {shape:<18}{heads}")
        print(f"{'':<28}{'':>11}  file: {r['file']}")
    return 0


def _models_verify(args: argparse.Namespace) -> int:
    from holotune.models import list_models
    from holotune.models.verification import verify_models

    unknown = [n for n in args.names if n not in list_models()]
    if unknown:
        print(f"holotune: unknown model(s) {', '.join(unknown)}; known: {', '.join(list_models())}", file=sys.stderr)
        return 2
    report = verify_models(args.names or None, tolerance=args.tolerance, onnx_dir=args.onnx_dir,
                           check_onnx=not args.no_onnx)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_verify_table(report)
    return 0 if report.passed else 1


def _print_verify_table(report) -> None:
    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.2e}"

    print(f"max |difference| per output on real photo crops (tolerance {report.tolerance:g})")
    print(f"{'model':<28}{'output':<17}{'torch/tflite':>13}{'onnx/torch':>12}{'batch/single':>14}  result")
    for name, m in report.models.items():
        if m.error:
            print(f"{name:<28}{'':<17}{'':>13}{'':>12}{'':>14}  FAIL: {m.error}")
            continue
        for out, d in m.outputs.items():
            ok = all(v <= report.tolerance for v in d.values() if v is not None)
            print(f"{name:<28}{out:<17}{fmt(d['torch_vs_tflite']):>13}{fmt(d['onnx_vs_torch']):>12}"
                  f"{fmt(d['batch_vs_single']):>14}  {'ok' if ok else 'FAIL'}")
    verdict = "all models match" if report.passed else "PARITY FAILED"
    print(f"{verdict}: {sum(m.passed(report.tolerance) for m in report.models.values())}/{len(report.models)} models pass")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="holotune", description="Fine-tune and serve MediaPipe Holistic's models.")
    parser.add_argument("--version", action="version", version=f"holotune {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="the stock MediaPipe models as PyTorch modules")
    models_sub = models.add_subparsers(dest="action", required=True)
    p = models_sub.add_parser("list", help="name, file, parameters, input, outputs and head layers of each model")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_models_list)
    p = models_sub.add_parser("verify", help="prove TFLite = PyTorch = ONNX Runtime on real photo crops")
    p.add_argument("names", nargs="*", help="models to verify (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--tolerance", type=float, default=1e-2, help="max abs difference allowed (default 1e-2)")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX export and ONNX Runtime check")
    p.add_argument("--onnx-dir", default=None, help="keep the exported ONNX files in this folder")
    p.set_defaults(func=_models_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
