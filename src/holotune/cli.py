"""The ``holotune`` command line.

    holotune models list [--json]
    holotune models verify [NAME ...] [--json] [--tolerance T] [--no-onnx] [--onnx-dir DIR]
    holotune models export [--dir DIR] [--force]
    holotune models package --out DIR [--onnx-dir DIR] [--no-verify] [--tolerance T]
    holotune models promote NAME VERSION|challenger [--alias champion] [--force] [--expect-classes none,a,b] [--tracking-uri URI]
    holotune models versions NAME [--json] [--tracking-uri URI]
    holotune models pull NAME@ALIAS|NAME/VERSION --format onnx|tflite --out DIR [--tracking-uri URI]
    holotune infer INPUT ... [--json] [--overlay DIR|FILE.mp4] [--face-mesh M] [--hands M] [--pose M] [--gesture M]
    holotune infer clip.mp4 frames/f_%04d.png [--static-image-mode] [--smooth-face] [--smooth-hands] [--progress]
    holotune infer --camera 0 | --source rtsp://... [--json] [--overlay live.mp4]     (Ctrl-C stops)
    holotune bench runtime [--images DIR] [--json] [--runs N]
    holotune data validate PATH [--json]
    holotune serve [--host 127.0.0.1] [--port 8080] [--workspace DIR] [--tensorboard-port PORT] ...
    holotune tensorboard [--workspace DIR | --logdir DIR] [--host 127.0.0.1] [--port 6006]

Exit codes: 0 success, 1 a check failed, 2 bad usage or unreadable input (or a command run on an
install without the extra it needs: ``holotune[train]``, ``holotune[registry]``; the message says which).
"""

from __future__ import annotations

import argparse
import json
import sys

from holotune import __version__
from holotune.gesture import SCORE_THRESHOLD


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
    from holotune.runtime.sessions import stock_export_dir

    for name, path in export_stock_models(args.dir or stock_export_dir(), force=args.force).items():
        print(f"{name:<28}{path}")
    return 0


def _models_package(args: argparse.Namespace) -> int:
    from holotune.stock_models import PackageError, describe, package_stock_models

    if not args.tolerance > 0:
        print(f"holotune: --tolerance must be > 0, got {args.tolerance}", file=sys.stderr)
        return 2
    try:
        result = package_stock_models(args.out, onnx_dir=args.onnx_dir, verify=not args.no_verify,
                                      tolerance=args.tolerance)
    except PackageError as exc:
        print(f"holotune: {exc}", file=sys.stderr)
        return 1
    print(describe(result))
    return 0


def _tracking_uri(args: argparse.Namespace) -> str:
    import os

    return args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"


def _models_promote(args: argparse.Namespace) -> int:
    from holotune.registry import GateFailed, RegistryError, promote

    expected = None if args.expect_classes is None else [c.strip() for c in args.expect_classes.split(",")]
    try:
        version = promote(args.name, args.version, args.alias, _tracking_uri(args), expect_class_names=expected,
                          force=args.force)
    except GateFailed as exc:
        print(f"holotune: {exc} (--force promotes it anyway)", file=sys.stderr)
        return 2
    except RegistryError as exc:
        print(f"holotune: {exc}", file=sys.stderr)
        return 2
    named = "" if args.version == version else f" ({args.version})"
    print(f"{args.name}@{args.alias} -> version {version}{named}")
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
            passed = v["gate"]["gate_passed"]
            gate = "" if passed is None else f"  gate: {'passed' if passed else 'FAILED'}"
            job = f"  job: {v['job_id']}" if v["job_id"] else ""
            print(f"{args.name} v{v['version']}{stock}  aliases: {', '.join(v['aliases']) or '-'}{gate}{job}")
    return 0


def _models_pull(args: argparse.Namespace) -> int:
    import os

    from holotune.registry import RegistryError, pull_model

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one result line, not a progress bar
    try:
        path = pull_model(args.ref, args.format, args.out, _tracking_uri(args))
    except RegistryError as exc:
        print(f"holotune: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _ensure_stock_models() -> None:
    """Export the stock ONNX models on first use, in a child process (this one never imports torch);
    on the serving install, without them, stop with the message that says how to get them."""
    from holotune.runtime.sessions import ModelLoadError, ensure_stock_models

    try:
        ensure_stock_models()
    except ModelLoadError as exc:
        raise _CommandError(str(exc)) from None


def _infer(args: argparse.Namespace) -> int:
    """Images, video files, image sequences, a camera or a stream URL; see :func:`_infer_clip` for videos."""
    from pathlib import Path

    from holotune.runtime import Holistic, ModelLoadError
    from holotune.runtime.image import VIDEO_SUFFIXES
    from holotune.runtime.video import WRITE_FOURCC

    if args.camera is not None and args.source:
        print("holotune: give --camera or --source, not both", file=sys.stderr)
        return 2
    live = args.camera if args.camera is not None else args.source
    if not args.inputs and live is None:
        print("holotune: nothing to do: give image or video files, --camera N or --source URL", file=sys.stderr)
        return 2
    videos = [p for p in args.inputs if _is_video(p)]
    overlay = Path(args.overlay) if args.overlay else None
    overlay_file = overlay is not None and overlay.suffix.lower() in VIDEO_SUFFIXES | set(WRITE_FOURCC)
    if overlay_file:
        if len(videos) + (live is not None) != 1 or len(videos) != len(args.inputs):
            print(f"holotune: --overlay {overlay} is one video file: it takes exactly one video and no images; "
                  "give a folder for several inputs", file=sys.stderr)
            return 2
        if overlay.suffix.lower() not in WRITE_FOURCC:
            print(f"holotune: --overlay {overlay}: cannot write {overlay.suffix} videos; use one of "
                  f"{', '.join(sorted(WRITE_FOURCC))}", file=sys.stderr)
            return 2
    if args.fps is not None and not 0 < args.fps <= 1000:
        print(f"holotune: --fps must be in (0, 1000], got {args.fps}", file=sys.stderr)
        return 2
    _ensure_stock_models()
    from holotune.runtime.smoothing import FACE_SMOOTHING, HAND_SMOOTHING

    try:
        holistic = Holistic(args.min_detection_confidence, args.min_tracking_confidence,
                            face_smoothing=FACE_SMOOTHING if args.smooth_face else None,
                            hand_smoothing=HAND_SMOOTHING if args.smooth_hands else None,
                            face_mesh=args.face_mesh, hands=args.hands, pose=args.pose, gesture=args.gesture,
                            gesture_threshold=args.gesture_threshold)
    except (ModelLoadError, ValueError) as exc:
        print(f"holotune: {exc}", file=sys.stderr)
        return 2
    if overlay and not overlay_file:
        overlay.mkdir(parents=True, exist_ok=True)
    failed = images_failed = inputs = 0
    show_progress = args.progress or sys.stderr.isatty()
    with holistic:
        try:
            for path in args.inputs:
                inputs += 1
                if _is_video(path):
                    target = overlay if overlay_file else overlay / f"{_stem(path)}.mp4" if overlay else None
                    clip = _infer_clip(holistic, path, args, target, show_progress)
                    failed += clip.failed
                    if clip.interrupted:
                        raise KeyboardInterrupt
                elif not _infer_image(holistic, path, args, overlay):
                    images_failed += 1
            if live is not None:
                inputs += 1
                name = f"camera{args.camera}" if args.camera is not None else _stem(args.source) or "stream"
                target = overlay if overlay_file else overlay / f"{name}.mp4" if overlay else None
                clip = _infer_clip(holistic, live, args, target, show_progress)
                failed += clip.failed
        except KeyboardInterrupt:
            # Ctrl-C ends the run, not the program: what was done is flushed and closed (the clip's
            # own handler closed its video files).
            sys.stdout.flush()
            print(f"holotune: interrupted (Ctrl-C) during input {inputs} of {len(args.inputs) + (live is not None)}",
                  file=sys.stderr)
    if images_failed:
        images = len(args.inputs) - len(videos)
        print(f"holotune: {images_failed} of {images} image(s) failed", file=sys.stderr)
    if failed:
        print(f"holotune: {failed} video frame(s) or file(s) failed", file=sys.stderr)
    return 1 if failed or images_failed else 0


def _is_video(path: str) -> bool:
    from pathlib import Path

    from holotune.runtime.image import VIDEO_SUFFIXES
    from holotune.runtime.video import is_image_sequence, is_url

    return Path(path).suffix.lower() in VIDEO_SUFFIXES or is_image_sequence(path) or is_url(path)


def _stem(source: str) -> str:
    """A file name for a video's overlay: its stem, without a sequence's ``%04d`` or a URL's query."""
    import re
    from pathlib import Path

    return re.sub(r"[^\w.-]+", "_", re.sub(r"%0?\d*d", "", Path(source.split("?")[0]).stem)).strip("_.")


def _infer_image(holistic, path: str, args: argparse.Namespace, overlay_dir) -> bool:
    """One image: a JSON line (or a summary line) and an optional overlay PNG; False if it failed."""
    from pathlib import Path

    from holotune.runtime.image import ImageError, load_image

    try:
        image = load_image(path)
    except ImageError as exc:
        print(f"holotune: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps({"image": str(path), "error": str(exc)}))
        return False
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
    return True


class _ClipResult:
    """What one clip left: frames failed (lost or unprocessable, 1 if the clip did not open) and a Ctrl-C."""

    def __init__(self, failed: int = 0, interrupted: bool = False):
        self.failed = failed
        self.interrupted = interrupted


def _infer_clip(holistic, source, args: argparse.Namespace, overlay_path, show_progress: bool) -> _ClipResult:
    """One video source in video mode (a new tracking stream; ``--static-image-mode``: each frame
    alone): a JSON line per frame and per unreadable frame, an overlay video, a summary line.

    Ctrl-C stops it cleanly after the frame in progress: its JSON line and overlay frame are both
    written or neither, the overlay file is finished and the summary printed. A second Ctrl-C stops
    at once (a stalled stream), still finishing the files.
    """
    import signal
    import threading

    from holotune.runtime.overlay import draw_overlay
    from holotune.runtime.video import FrameError, VideoError, VideoReader, VideoWriter

    name = f"camera {source}" if isinstance(source, int) else str(source)
    try:
        reader = VideoReader(source, fps=args.fps)
    except VideoError as exc:
        print(f"holotune: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps({"video": name, "error": str(exc)}), flush=True)
        return _ClipResult(failed=1)
    stream = None if args.static_image_mode else holistic.stream()
    writer = VideoWriter(overlay_path, reader.fps) if overlay_path else None
    progress = _Progress(name, reader.frame_count, reader.live, show_progress)
    frames = lost = 0
    found = dict.fromkeys(("pose", "face", "left_hand", "right_hand"), 0)
    interrupted = False
    stop: list[bool] = []

    def on_ctrl_c(signum, frame) -> None:
        if stop:
            raise KeyboardInterrupt
        stop.append(True)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_ctrl_c) if main_thread else None
    try:
        for item in reader:
            if stop:
                break
            if isinstance(item, FrameError):
                lost += item.count
                progress.note(f"holotune: {item.message}")
                if args.json:
                    print(json.dumps(item.record(name)), flush=True)
                continue
            record = item.record(name)
            if "reset" in record:
                progress.note(f"holotune: {record['reset']}")
                if stream is not None:
                    stream.reset()
            try:
                result = holistic.process(item.image) if stream is None else stream.process(item.image,
                                                                                             item.timestamp_ms)
            except ValueError as exc:  # a frame Holistic refuses (e.g. a timestamp out of order)
                refused = FrameError.refused(name, item, exc)
                lost += refused.count
                progress.note(f"holotune: {refused.message}")
                if args.json:
                    print(json.dumps(refused.record(name)), flush=True)
                continue
            frames += 1
            for part in found:
                found[part] += getattr(result, part) is not None
            if writer is not None:
                writer.write(draw_overlay(item.image, result))
            if args.json:
                print(json.dumps({**record, **result.to_dict()}), flush=True)
            progress.update(frames + lost)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
        interrupted = interrupted or bool(stop)
        reader.close()
        if writer is not None:
            writer.close()
        progress.done()
    elapsed = progress.elapsed()
    parts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in found.items())
    end = "stopped by Ctrl-C" if interrupted else reader.end_reason
    summary = (f"{name}: {frames} frame(s) processed ({parts}), {lost} lost, "
               f"{frames / elapsed if elapsed > 0 else 0.0:.1f} frames/s; {end}"
               + (f"; overlay {overlay_path} ({writer.frames_written} frames)" if writer is not None else ""))
    print(summary, file=sys.stderr if args.json else sys.stdout, flush=True)
    return _ClipResult(failed=lost, interrupted=interrupted)


class _Progress:
    """A one-line readout on stderr, redrawn at most 5 times a second: frames done (of how many)
    and frames/s over the last 30 frames (a live rate, not the average since the start)."""

    def __init__(self, name: str, total: int | None, live: bool, enabled: bool):
        import collections
        import time

        self.name, self.total, self.live, self.enabled = name, total, live, enabled
        # A terminal gets one line redrawn in place; a file or pipe (--progress) a line per second.
        self.tty = sys.stderr.isatty()
        self._every = 0.2 if self.tty else 1.0
        self._clock = time.monotonic
        self._start = self._clock()
        self._times = collections.deque([self._start], maxlen=31)
        self._drawn = 0.0  # when the readout was last drawn (0: not on screen)
        self._done = 0

    def update(self, done: int) -> None:
        now = self._clock()
        self._done = done
        self._times.append(now)
        if self.enabled and now - self._drawn >= self._every:
            self._draw(now)

    def _draw(self, now: float) -> None:
        span = self._times[-1] - self._times[0]
        rate = (len(self._times) - 1) / span if span > 0 else 0.0
        of = f"/{self.total} ({100 * self._done / self.total:.0f}%)" if self.total and not self.live else ""
        hint = "  Ctrl-C stops" if self.live else ""
        line = f"{self.name}: frame {self._done}{of}  {rate:.1f} frames/s{hint}"
        sys.stderr.write(f"\r{line}\033[K" if self.tty else f"{line}\n")
        sys.stderr.flush()
        self._drawn = now

    def note(self, message: str) -> None:
        """Print ``message`` on its own line (above the readout)."""
        if self._drawn and self.tty:
            sys.stderr.write("\r\033[K")
        print(message, file=sys.stderr, flush=True)
        self._drawn = 0.0  # redrawn below the message at the next frame

    def done(self) -> None:
        if self.enabled:
            self._draw(self._clock())
            if self.tty:
                sys.stderr.write("\n")
            sys.stderr.flush()

    def elapsed(self) -> float:
        return self._clock() - self._start


def _bench_runtime(args: argparse.Namespace) -> int:
    from holotune.runtime.benchmark import benchmark_runtime, format_table, load_bench_images

    _require_training("holotune bench runtime", ("mediapipe",))
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


class _CommandError(Exception):
    """A command that cannot run here; :func:`main` prints the message and exits 2."""


class _NeedsTraining(_CommandError):
    """A command that needs the training install, run on the serving install; the message says so."""


def _require_training(what: str, modules: tuple[str, ...]) -> None:
    """Stop ``what`` before it starts unless ``modules`` (training-install modules) are installed."""
    from holotune.extras import missing, needs_training

    absent = missing(modules)
    if absent:
        raise _NeedsTraining(needs_training(what, absent))


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

    if args.tensorboard_port:
        _require_training("holotune serve --tensorboard-port", ("tensorboard",))
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
        infer_concurrency=args.infer_concurrency, max_video_bytes=args.max_video_bytes,
        max_video_frames=args.max_video_frames, max_video_seconds=args.max_video_seconds,
        max_frame_pixels=args.max_frame_pixels, max_stream_sessions=args.max_stream_sessions,
        max_stream_seconds=args.max_stream_seconds, max_stream_frame_bytes=args.max_stream_frame_bytes)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    from holotune.service.security import TokenRedactor

    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # WebSocket paths carry ?token=
        logging.getLogger(name).addFilter(TokenRedactor())
    board = None
    if args.tensorboard_port:
        logdir = str(resolve_settings(settings).state_dir)
        board = subprocess.Popen(_tensorboard_command(logdir, args.host, args.tensorboard_port))
    try:
        # uvicorn closes a WebSocket whose message is over ws_max_size (code 1009); frames between
        # max_stream_frame_bytes and that get an error message and the session goes on.
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level,
                    ws_max_size=max(16 * 1024 * 1024, 2 * settings.max_stream_frame_bytes))
    finally:
        if board is not None:
            board.terminate()
            board.wait(timeout=10)
    return 0


def _tensorboard(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from holotune.service.settings import ServiceSettings, resolve_settings

    _require_training("holotune tensorboard", ("tensorboard",))
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
    p = models_sub.add_parser("package", help="build the stock-models wheel the serving install (no torch) runs on: "
                                              "export (or reuse the exports), verify against the .tflite, write it")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the wheel into (created if missing)")
    p.add_argument("--onnx-dir", default=None, metavar="DIR", help="exports to package; missing ones are exported "
                                                                   "(default: $HOLOTUNE_ONNX_DIR or ~/.cache/holotune)")
    p.add_argument("--no-verify", action="store_true", help="skip the check against MediaPipe's .tflite files")
    p.add_argument("--tolerance", type=float, default=1e-2, help="max abs difference allowed (default 1e-2)")
    p.set_defaults(func=_models_package)
    p = models_sub.add_parser("promote", help="point an MLflow alias (default champion) at a registered version")
    p.add_argument("name", help="registered model, e.g. holotune-face_mesh")
    p.add_argument("version", help="version number (1 is the stock model: promoting it rolls back), or an alias "
                                   "naming one (challenger)")
    p.add_argument("--alias", default="champion")
    p.add_argument("--force", action="store_true",
                   help="promote a version whose evaluation gate failed (tag gate_passed=false)")
    p.add_argument("--expect-classes", metavar="NONE,A,B", default=None,
                   help="gesture models: refuse unless the version's class names are exactly these, in order")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
    p.set_defaults(func=_models_promote)
    p = models_sub.add_parser("versions", help="the registered versions of a model and their aliases")
    p.add_argument("name", help="registered model, e.g. holotune-face_mesh")
    p.add_argument("--json", action="store_true")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
    p.set_defaults(func=_models_versions)
    p = models_sub.add_parser("pull", help="fetch a registered version's ONNX or .tflite file (the .tflite under "
                                           "the name MediaPipe loads, e.g. face_landmark.tflite)")
    p.add_argument("ref", metavar="NAME@ALIAS", help="e.g. holotune-face_mesh@champion, or holotune-face_mesh/3")
    p.add_argument("--format", choices=("onnx", "tflite"), default="onnx")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the file into (created if missing)")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
    p.set_defaults(func=_models_pull)

    p = sub.add_parser("infer", help="run Holistic (ONNX Runtime) on images and videos: 543 keypoints per image "
                                     "or frame")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="image files, video files (.mp4, .avi, .mov, .mkv, .webm, .m4v), image sequences "
                        "(frames/f_%%04d.png) or video URLs")
    p.add_argument("--camera", type=int, metavar="N", help="also read camera N (live; Ctrl-C stops)")
    p.add_argument("--source", metavar="URL", help="also read this live source: rtsp://, http://, a file, ...")
    p.add_argument("--json", action="store_true", help="one JSON line per image or video frame")
    p.add_argument("--overlay", metavar="DIR|FILE", help="draw the landmarks: <stem>.png per image and <stem>.mp4 "
                                                        "per video into DIR, or one video into FILE.mp4")
    p.add_argument("--static-image-mode", action="store_true",
                   help="videos: process every frame alone (no tracking, no smoothing)")
    p.add_argument("--smooth-face", action="store_true", help="videos: one-euro smoothing of the face landmarks")
    p.add_argument("--smooth-hands", action="store_true", help="videos: one-euro smoothing of the hand landmarks")
    p.add_argument("--fps", type=float, help="videos: frame rate for timestamps, instead of the container's "
                                             "(image sequences: default 30)")
    p.add_argument("--progress", action="store_true", help="videos: a progress line with frames/s on stderr even "
                                                           "when it is not a terminal")
    p.add_argument("--min-detection-confidence", type=float, default=0.5)
    p.add_argument("--min-tracking-confidence", type=float, default=0.5)
    for part in ("face-mesh", "hands", "pose"):
        p.add_argument(f"--{part}", metavar="MODEL", help=f"fine-tuned {part} model: .onnx file or models:/NAME@ALIAS")
    p.add_argument("--gesture", metavar="MODEL", help="landmark gesture head: gesture.onnx or "
                                                      "models:/holotune-gesture@ALIAS (adds left_gesture, right_gesture)")
    p.add_argument("--gesture-threshold", type=float, default=SCORE_THRESHOLD,
                   help=f"score below which a hand's gesture is 'none' (default {SCORE_THRESHOLD}, MediaPipe's)")
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
    p.add_argument("--tracking-uri", help="MLflow tracking/registry URI (default: $MLFLOW_TRACKING_URI, else "
                                          "sqlite:///<workspace>/mlflow.db, the registry make demo and "
                                          "holotune models use in the project folder)")
    p.add_argument("--alias", default="champion", help="registry alias the inference follows (default champion)")
    p.add_argument("--poll-interval", type=float, default=30.0, help="seconds between registry checks (0: only "
                                                                     "on POST /api/v1/models/reload)")
    p.add_argument("--max-jobs", type=int, default=1, help="jobs running at once; the rest queue (default 1)")
    p.add_argument("--public-url", help="base URL for log_url in responses (default: the URL the client used)")
    p.add_argument("--max-body-bytes", type=int, help="largest JSON body (default 65536)")
    p.add_argument("--max-upload-bytes", type=int, help="largest image upload (default 16 MiB)")
    p.add_argument("--max-image-pixels", type=int, help="largest decoded image, width x height (default 40e6)")
    p.add_argument("--infer-concurrency", type=int, help="images processed at once (default 1)")
    p.add_argument("--max-video-bytes", type=int, help="largest video upload (default 64 MiB)")
    p.add_argument("--max-video-frames", type=int, help="most frames in an uploaded video (default 9000)")
    p.add_argument("--max-video-seconds", type=float, help="longest uploaded video (default 600)")
    p.add_argument("--max-frame-pixels", type=int, help="largest video or stream frame, width x height "
                                                        "(default 3840x2160)")
    p.add_argument("--max-stream-sessions", type=int, help="WebSocket stream sessions open at once (default 4)")
    p.add_argument("--max-stream-seconds", type=float, help="longest WebSocket stream session (default 3600)")
    p.add_argument("--max-stream-frame-bytes", type=int, help="largest encoded frame on a stream (default 4 MiB)")
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
    try:
        return args.func(args)
    except _CommandError as exc:
        print(f"holotune: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # a module of an extra this install lacks: say which extra
        from holotune.extras import extra_for, needs

        extra = extra_for(exc)
        if extra is None:
            raise
        command = " ".join(v for v in (args.command, getattr(args, "action", None), getattr(args, "what", None)) if v)
        print(f"holotune: {needs(extra, f'holotune {command}', [exc.name.split('.')[0]])}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
