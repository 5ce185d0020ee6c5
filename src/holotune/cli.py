"""The ``holotune`` command line.

    holotune models list [--json]
    holotune models verify [NAME ...] [--json] [--tolerance T] [--no-onnx] [--onnx-dir DIR]
    holotune models export [--dir DIR] [--force]
    holotune models promote NAME VERSION [--alias champion] [--tracking-uri URI]
    holotune models versions NAME [--json] [--tracking-uri URI]
    holotune infer IMAGE ... [--json] [--overlay DIR] [--face-mesh M] [--hands M] [--pose M]
    holotune bench runtime [--images DIR] [--json] [--runs N]
    holotune data validate PATH [--json]
    holotune serve [--host 127.0.0.1] [--port 8080] [--workspace DIR] [--tensorboard-port PORT] ...
    holotune tensorboard [--workspace DIR | --logdir DIR] [--host 127.0.0.1] [--port 6006]

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


def _models_export(args: argparse.Namespace) -> int:
    from holotune.export import export_stock_models

    for name, path in export_stock_models(args.dir, force=args.force).items():
        print(f"{name:<28}{path}")
    return 0


def _tracking_uri(args: argparse.Namespace) -> str:
    import os

    return args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"


def _models_promote(args: argparse.Namespace) -> int:
    from holotune.registry import RegistryError, promote

    try:
        promote(args.name, args.version, args.alias, _tracking_uri(args))
    except RegistryError as exc:
        print(f"holotune: {exc}", file=sys.stderr)
        return 2
    print(f"{args.name}@{args.alias} -> version {args.version}")
    return 0


def _models_versions(args: argparse.Namespace) -> int:
    from holotune.registry import RegistryError, list_versions

    try:
        versions = list_versions(args.name, _tracking_uri(args))
    except RegistryError as exc:
        print(f"holotune: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(versions, indent=2))
    else:
        for v in versions:
            stock = " (stock)" if v["tags"].get("stock") == "true" else ""
            print(f"{args.name} v{v['version']}{stock}  aliases: {', '.join(v['aliases']) or '-'}")
    return 0


def _ensure_stock_models() -> None:
    """Export the stock ONNX models on first use, in a child process (this one never imports torch)."""
    from holotune.runtime.sessions import ensure_stock_models

    ensure_stock_models()


def _infer(args: argparse.Namespace) -> int:
    from pathlib import Path

    from holotune.runtime import Holistic, ModelLoadError
    from holotune.runtime.image import ImageError, load_image

    _ensure_stock_models()
    try:
        holistic = Holistic(args.min_detection_confidence, args.min_tracking_confidence,
                            face_mesh=args.face_mesh, hands=args.hands, pose=args.pose)
    except (ModelLoadError, ValueError) as exc:
        print(f"holotune: {exc}", file=sys.stderr)
        return 2
    failed = 0
    overlay_dir = Path(args.overlay) if args.overlay else None
    if overlay_dir:
        overlay_dir.mkdir(parents=True, exist_ok=True)
    with holistic:
        for path in args.images:
            try:
                image = load_image(path)
            except ImageError as exc:
                failed += 1
                print(f"holotune: {exc}", file=sys.stderr)
                if args.json:
                    print(json.dumps({"image": str(path), "error": str(exc)}))
                continue
            result = holistic.process(image)
            if args.json:
                print(json.dumps({"image": str(path), "width": image.shape[1], "height": image.shape[0],
                                  **result.to_dict()}))
            else:
                found = [k for k in ("pose", "face", "left_hand", "right_hand") if getattr(result, k) is not None]
                print(f"{path}: {', '.join(found) if found else 'no person'}")
            if overlay_dir:
                import cv2

                from holotune.runtime.overlay import draw_overlay

                target = overlay_dir / f"{Path(path).stem}.png"
                cv2.imwrite(str(target), cv2.cvtColor(draw_overlay(image, result), cv2.COLOR_RGB2BGR))
    if failed:
        print(f"holotune: {failed} of {len(args.images)} image(s) failed", file=sys.stderr)
    return 1 if failed else 0


def _bench_runtime(args: argparse.Namespace) -> int:
    from holotune.runtime.benchmark import benchmark_runtime, format_table, load_bench_images

    _ensure_stock_models()
    report = benchmark_runtime(load_bench_images(args.images), runs=args.runs, warmup=args.warmup)
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0


def _data_validate(args: argparse.Namespace) -> int:
    from holotune.data.ingest import IngestError, validate
    from holotune.data.validation import LabelRules

    try:
        rules = LabelRules() if args.tolerance is None else LabelRules(coordinate_tolerance=args.tolerance)
        report = validate(args.path, rules)
    except (FileNotFoundError, PermissionError, IsADirectoryError, IngestError) as exc:
        print(f"holotune: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for bad in report["invalid"]:
            where = bad["file"] + ("" if bad["index"] is None else f" #{bad['index']}")
            print(f"INVALID {where}: {bad['reason']}")
        print(f"{report['path']} ({report['kind']}): {report['records']} records, {report['valid']} valid, "
              f"{len(report['invalid'])} invalid")
    return 0 if not report["invalid"] else 1


def _tensorboard_command(logdir: str, host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--host", host, "--port", str(port)]


def _serve(args: argparse.Namespace) -> int:
    import logging
    import subprocess
    from pathlib import Path

    import uvicorn

    from holotune.runtime.sessions import ModelLoadError, ensure_stock_models
    from holotune.service import ServiceSettings, create_app
    from holotune.service.settings import resolve_settings

    try:
        ensure_stock_models()
    except ModelLoadError as error:
        print(f"holotune serve: {error}", file=sys.stderr)
        return 1
    settings = ServiceSettings.from_env(
        host=args.host, port=args.port, workspace=Path(args.workspace) if args.workspace else None,
        project_root=Path(args.project_root) if args.project_root else None,
        token_file=Path(args.token_file) if args.token_file else None, tracking_uri=args.tracking_uri,
        alias=args.alias, poll_interval_s=args.poll_interval, max_running_jobs=args.max_jobs,
        finetune_api=not args.no_finetune_api, public_url=args.public_url, max_body_bytes=args.max_body_bytes,
        max_upload_bytes=args.max_upload_bytes, max_image_pixels=args.max_image_pixels,
        infer_concurrency=args.infer_concurrency)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    board = None
    if args.tensorboard_port:
        logdir = str(resolve_settings(settings).state_dir)
        board = subprocess.Popen(_tensorboard_command(logdir, args.host, args.tensorboard_port))
    try:
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
    finally:
        if board is not None:
            board.terminate()
            board.wait(timeout=10)
    return 0


def _tensorboard(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from holotune.service.settings import ServiceSettings, resolve_settings

    logdir = args.logdir or str(resolve_settings(ServiceSettings.from_env(
        workspace=Path(args.workspace) if args.workspace else None)).state_dir)
    Path(logdir).mkdir(parents=True, exist_ok=True)
    print(f"holotune: TensorBoard over {logdir} at http://{args.host}:{args.port}/", file=sys.stderr)
    command = _tensorboard_command(logdir, args.host, args.port)
    sys.stderr.flush()
    os.execv(command[0], command)  # become TensorBoard: a signal to this process reaches it, no orphan


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
    p = models_sub.add_parser("export", help="export the stock models to ONNX for the runtime (once per machine)")
    p.add_argument("--dir", default=None, help="output folder (default: $HOLOTUNE_ONNX_DIR or ~/.cache/holotune)")
    p.add_argument("--force", action="store_true", help="re-export files that already exist")
    p.set_defaults(func=_models_export)
    p = models_sub.add_parser("promote", help="point an MLflow alias (default champion) at a registered version")
    p.add_argument("name", help="registered model, e.g. holotune-face_mesh")
    p.add_argument("version", help="version number (1 is the stock model: promoting it rolls back)")
    p.add_argument("--alias", default="champion")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
    p.set_defaults(func=_models_promote)
    p = models_sub.add_parser("versions", help="the registered versions of a model and their aliases")
    p.add_argument("name", help="registered model, e.g. holotune-face_mesh")
    p.add_argument("--json", action="store_true")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
    p.set_defaults(func=_models_versions)

    p = sub.add_parser("infer", help="run Holistic (ONNX Runtime) on images: 543 keypoints per image")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--json", action="store_true", help="one JSON line per image")
    p.add_argument("--overlay", metavar="DIR", help="write <stem>.png with the landmarks drawn into DIR")
    p.add_argument("--min-detection-confidence", type=float, default=0.5)
    p.add_argument("--min-tracking-confidence", type=float, default=0.5)
    for part in ("face-mesh", "hands", "pose"):
        p.add_argument(f"--{part}", metavar="MODEL", help=f"fine-tuned {part} model: .onnx file or models:/NAME@ALIAS")
    p.set_defaults(func=_infer)

    data = sub.add_parser("data", help="check data before ingesting it")
    data_sub = data.add_subparsers(dest="action", required=True)
    p = data_sub.add_parser("validate", help="check every record of an image folder, annotation file or TFRecords")
    p.add_argument("path", help="image folder, .jsonl/.csv annotation file, sidecar folder, .tfrecord file or folder")
    p.add_argument("--json", action="store_true", help='print {"records", "valid", "invalid": [...]} as JSON')
    p.add_argument("--tolerance", type=float, default=None,
                   help="how far labelled x, y may lie outside [0, 1] (default: LabelRules.coordinate_tolerance)")
    p.set_defaults(func=_data_validate)

    p = sub.add_parser("serve", help="the HTTP service: fine-tuning jobs, pruning, inference (OpenAPI at /docs)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback; any other needs the token "
                                                        "on every endpoint)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workspace", help="the only folder request paths may point into (default: $HOLOTUNE_WORKSPACE "
                                       "or the current folder); jobs and their logs go to <workspace>/jobs")
    p.add_argument("--project-root", help="folder with stages/ and conf/ (default: this checkout)")
    p.add_argument("--token-file", help="file holding the bearer token (default: $HOLOTUNE_API_TOKEN, "
                                        "$HOLOTUNE_API_TOKEN_FILE, else generated into <workspace>/jobs/api_token)")
    p.add_argument("--tracking-uri", help="MLflow tracking/registry URI (default sqlite:///<workspace>/jobs/mlflow.db)")
    p.add_argument("--alias", default="champion", help="registry alias the inference follows (default champion)")
    p.add_argument("--poll-interval", type=float, default=30.0, help="seconds between registry checks (0: only "
                                                                     "on POST /api/v1/models/reload)")
    p.add_argument("--max-jobs", type=int, default=1, help="jobs running at once; the rest queue (default 1)")
    p.add_argument("--public-url", help="base URL for log_url in responses (default: the URL the client used)")
    p.add_argument("--max-body-bytes", type=int, help="largest JSON body (default 65536)")
    p.add_argument("--max-upload-bytes", type=int, help="largest image upload (default 16 MiB)")
    p.add_argument("--max-image-pixels", type=int, help="largest decoded image, width x height (default 40e6)")
    p.add_argument("--infer-concurrency", type=int, help="images processed at once (default 1)")
    p.add_argument("--tensorboard-port", type=int, default=0, help="also run TensorBoard over every job's logs on "
                                                                   "this port (e.g. 6006)")
    p.add_argument("--no-finetune-api", action="store_true", help="serve inference and models only")
    p.add_argument("--enable_finetune_api", "--enable-finetune-api", action="store_true",
                   help="accepted for compatibility with the original image; the fine-tuning API is on by default")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=_serve)

    p = sub.add_parser("tensorboard", help="TensorBoard over every service job's logs")
    p.add_argument("--workspace", help="the service's workspace (logs in <workspace>/jobs)")
    p.add_argument("--logdir", help="any other folder of TensorBoard event files")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=6006)
    p.set_defaults(func=_tensorboard)

    bench = sub.add_parser("bench", help="speed benchmarks")
    bench_sub = bench.add_subparsers(dest="what", required=True)
    p = bench_sub.add_parser("runtime", help="holotune's Holistic vs mediapipe.solutions.holistic, same images")
    p.add_argument("--images", metavar="DIR", help="folder of images (default: the sample photos)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--runs", type=int, default=15, help="timed calls per image and runtime")
    p.add_argument("--warmup", type=int, default=2)
    p.set_defaults(func=_bench_runtime)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
