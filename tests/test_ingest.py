"""The ingest stage: every bad input is quarantined with a reason that names it; counts add up;
splits are deterministic and never split a group."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from stage_options import ingest_options

from holotune.data.ingest import IngestError, Source, ingest
from holotune.data.manifest import read_manifest
from holotune.samples import sample_images


def _keypoints(n=543, value=0.5):
    return np.full((n, 3), value, dtype=float).tolist()


@pytest.fixture()
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    astronaut = sample_images()["astronaut"]
    for i in range(6):
        Image.fromarray(np.ascontiguousarray(np.roll(astronaut, 7 * i, axis=1)[::4, ::4])).save(folder / f"p{i}.jpg")
    return folder


def _write_jsonl(path, rows):
    path.write_text("".join((json.dumps(r) if isinstance(r, dict) else r) + "\n" for r in rows))
    return path


def test_labelled_jsonl_with_every_kind_of_bad_row(tmp_path, photos):
    (photos / "broken.jpg").write_bytes((photos / "p0.jpg").read_bytes()[:600])  # truncated JPEG
    (photos / "notes.jpg").write_text("not a picture")
    mask = np.ones(543)
    mask[3] = 0
    nan_kp = _keypoints()
    nan_kp[10][1] = float("nan")
    far = _keypoints()
    far[40][0] = 7.5
    rows = [
        {"image": "photos/p0.jpg", "keypoints": _keypoints(), "subject": "a"},
        {"image": "photos/p1.jpg", "keypoints": _keypoints(), "mask": mask.tolist(), "subject": "a"},
        {"image": "photos/p2.jpg", "keypoints": _keypoints(500)},
        {"image": "photos/p3.jpg", "keypoints": nan_kp},
        {"image": "photos/p4.jpg", "keypoints": far},
        {"image": "photos/p5.jpg", "keypoints": _keypoints(), "mask": [1.0] * 500},
        {"image": "photos/broken.jpg", "keypoints": _keypoints()},
        {"image": "photos/notes.jpg", "keypoints": _keypoints()},
        {"image": "photos/missing.jpg", "keypoints": _keypoints()},
        "{not json",
    ]
    labels = _write_jsonl(tmp_path / "labels.jsonl", rows)
    report = ingest(ingest_options([Source("labelled", str(labels))], tmp_path / "out"))
    assert report.counts == {"in": 10, "kept": 2, "quarantined": 8}
    reasons = {q["index"]: q["reason"] for q in report.quarantined}
    assert reasons[3] == "keypoints: 500 points, expected 543 (pose 33, face 468, left hand 21, right hand 21)"
    assert reasons[4].startswith("keypoints: 1 non-finite value(s), first at point 10 y = nan")
    assert reasons[5].startswith("keypoints: 1 labelled point(s) far outside [0, 1] (first: point 40, up to 7.5")
    assert reasons[6] == "mask: 500 values, expected 543"
    assert reasons[7].startswith("corrupt or truncated image")
    assert reasons[8] == "not an image file (or an unsupported format)"
    assert reasons[9].endswith("missing.jpg: no such file")
    assert reasons[10].startswith("line 10: not valid JSON")
    assert all(q["file"] == str(labels) for q in report.quarantined)
    kept = list(read_manifest(tmp_path / "out" / "manifest.jsonl"))
    assert [s.group for s in kept] == ["a", "a"] and kept[1].mask[3] == 0
    saved = json.loads((tmp_path / "out" / "ingest_report.json").read_text())
    assert saved["counts"] == report.counts and len(saved["quarantined"]) == 8


def test_strict_mode_fails_on_the_first_bad_sample(tmp_path, photos):
    labels = _write_jsonl(tmp_path / "labels.jsonl", [{"image": "photos/p0.jpg", "keypoints": _keypoints(500)}])
    with pytest.raises(IngestError, match=r"labels.jsonl #1: keypoints: 500 points, expected 543 \(.*strict mode"):
        ingest(ingest_options([Source("labelled", str(labels))], tmp_path / "out", strict=True))


def test_coordinate_tolerance_is_configurable(tmp_path, photos):
    far = _keypoints()
    far[0][0] = 1.3
    labels = _write_jsonl(tmp_path / "labels.jsonl", [{"image": "photos/p0.jpg", "keypoints": far}])
    assert ingest(ingest_options([Source("labelled", str(labels))], tmp_path / "a")).counts["kept"] == 1
    tight = {"coordinate_tolerance": 0.1}
    assert ingest(ingest_options([Source("labelled", str(labels))], tmp_path / "b", **tight)).counts["quarantined"] == 1


def test_csv_and_sidecar_sources(tmp_path, photos):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("image,keypoints,label_name\n"
                        f"photos/p0.jpg,\"{json.dumps(_keypoints())}\",fist\n"
                        f"photos/p1.jpg,\"{json.dumps(_keypoints(10))}\",palm\n")
    report = ingest(ingest_options([Source("labelled", str(csv_path))], tmp_path / "csv", class_names=("fist", "palm")))
    assert report.counts == {"in": 2, "kept": 1, "quarantined": 1} and report.classes == {"fist": 1}
    (photos / "p0.json").write_text(json.dumps({"keypoints": _keypoints(), "subject": "s0"}))
    (photos / "README.md").write_text("about these photos")
    report = ingest(ingest_options([Source("labelled", str(photos))], tmp_path / "side"))
    reasons = sorted(q["reason"] for q in report.quarantined)
    assert report.counts["kept"] == 1 and report.counts["in"] == report.counts["kept"] + report.counts["quarantined"]
    assert "unsupported file type '.md'" in reasons and "no sidecar label file p1.json" in reasons


def test_class_folder_errors_are_configuration_errors(tmp_path, photos):
    root = tmp_path / "gestures"
    (root / "fist").mkdir(parents=True)
    (root / "palm").mkdir()
    (root / "fist" / "a.jpg").write_bytes((photos / "p0.jpg").read_bytes())
    with pytest.raises(IngestError, match="class folder 'palm' is empty"):
        ingest(ingest_options([Source("class_folders", str(root))], tmp_path / "out"))
    (root / "palm" / "b.jpg").write_bytes((photos / "p1.jpg").read_bytes())
    with pytest.raises(IngestError, match=r"do not match the class folders \['fist', 'palm'\]; no folder for \['ok'\]; "
                                          r"not in class_names: \['palm'\]"):
        ingest(ingest_options([Source("class_folders", str(root))], tmp_path / "out", class_names=("fist", "ok")))


def test_bad_options_fail_before_any_work(tmp_path):
    with pytest.raises(IngestError, match="no such file or folder"):
        ingest(ingest_options([Source("labelled", str(tmp_path / "nope.jsonl"))], tmp_path / "out"))
    with pytest.raises(IngestError, match="validation_split must be in"):
        ingest(ingest_options([Source("labelled", str(tmp_path))], tmp_path / "out", validation_split=1.5))


def test_splits_are_deterministic_and_respect_groups(tmp_path, photos):
    rows = [{"image": f"photos/p{i}.jpg", "keypoints": _keypoints(), "subject": f"person{i % 2}"} for i in range(6)]
    labels = _write_jsonl(tmp_path / "labels.jsonl", rows)
    options = {"split_by": "group", "validation_split": 0.3, "test_split": 0.3}
    first = [s.split for s in (ingest(ingest_options([Source("labelled", str(labels))], tmp_path / "a", **options)) and
                               read_manifest(tmp_path / "a" / "manifest.jsonl"))]
    again = [s.split for s in (ingest(ingest_options([Source("labelled", str(labels))], tmp_path / "b", **options)) and
                               read_manifest(tmp_path / "b" / "manifest.jsonl"))]
    assert first == again
    by_group = {}
    for s in read_manifest(tmp_path / "a" / "manifest.jsonl"):
        by_group.setdefault(s.group, set()).add(s.split)
    assert all(len(splits) == 1 for splits in by_group.values())


def test_a_job_always_gets_a_test_split_or_is_told_why_not(tmp_path, photos):
    """``require_test`` (the service's jobs): tiny data whose hash put no group in test gets the nearest group
    there; one group cannot be both trained and tested on; without it, the plain rule is kept."""
    from holotune.data.ingest import split_fraction

    rows = [{"image": f"photos/p{i}.jpg", "keypoints": _keypoints(), "subject": f"person{i % 3}"} for i in range(6)]
    labels = _write_jsonl(tmp_path / "labels.jsonl", rows)
    lowest = min(split_fraction(f"person{k}", 0) for k in range(3))
    options = {"split_by": "group", "validation_split": 0.0, "test_split": lowest / 2, "seed": 0}  # the hash: no test
    plain = ingest(ingest_options([Source("labelled", str(labels))], tmp_path / "a", **options))
    assert plain.splits["test"] == 0 and plain.split_rule["test_key_added"] is None
    report = ingest(ingest_options([Source("labelled", str(labels))], tmp_path / "b", require_test=True, **options))
    nearest = min((f"person{k}" for k in range(3)), key=lambda g: split_fraction(g, 0))
    assert report.split_rule == {"test_split": lowest / 2, "validation_split": 0.0, "split_by": "group", "seed": 0,
                                 "keys": 3, "test_key_added": nearest}
    assert {s.group for s in read_manifest(tmp_path / "b" / "manifest.jsonl") if s.split == "test"} == {nearest}
    assert report.splits == {"train": 4, "val": 0, "test": 2}
    assert json.loads((tmp_path / "b" / "ingest_report.json").read_text())["split_rule"]["test_key_added"] == nearest
    one = _write_jsonl(tmp_path / "one.jsonl", [{**r, "subject": "solo"} for r in rows])
    with pytest.raises(IngestError, match=r"no usable test split: ingest.test_split=0.25, split_by=group: 6 sample\(s\) "
                                          r"in 1 split unit\(s\).*add samples from more subjects or videos"):
        ingest(ingest_options([Source("labelled", str(one))], tmp_path / "c", require_test=True))
    assert json.loads((tmp_path / "c" / "ingest_report.json").read_text())["counts"]["kept"] == 6  # the evidence
    assert not (tmp_path / "c" / "manifest.jsonl").exists()


def test_data_validate_cli(tmp_path, photos, capsys):
    from holotune.cli import main

    labels = _write_jsonl(tmp_path / "labels.jsonl", [{"image": "photos/p0.jpg", "keypoints": _keypoints()},
                                                      {"image": "photos/p1.jpg", "keypoints": _keypoints(500)}])
    assert main(["data", "validate", str(labels), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["records"], report["valid"]) == (2, 1)
    assert report["invalid"] == [{"file": str(labels), "index": 2,
                                  "reason": "keypoints: 500 points, expected 543 (pose 33, face 468, left hand 21, right hand 21)"}]
    assert main(["data", "validate", str(photos)]) == 0  # an image folder: every image decodes
    assert "6 records, 6 valid, 0 invalid" in capsys.readouterr().out
    (photos / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert main(["data", "validate", str(photos)]) == 1
    assert "bad.png: corrupt or truncated image" in capsys.readouterr().out
    assert main(["data", "validate", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such file or folder" in capsys.readouterr().err


def test_unlabelled_images_and_video_are_labelled_by_the_teacher(tmp_path):
    import cv2

    from holotune.landmarks import PARTS

    folder = tmp_path / "raw"
    folder.mkdir()
    astronaut = sample_images()["astronaut"]
    Image.fromarray(astronaut).save(folder / "astronaut.png")
    writer = cv2.VideoWriter(str(folder / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 6.0, (512, 512))
    for shift in range(6):
        writer.write(cv2.cvtColor(np.ascontiguousarray(np.roll(astronaut, 4 * shift, axis=1)), cv2.COLOR_RGB2BGR))
    writer.release()
    (folder / "broken.mp4").write_bytes(b"\0" * 100)
    report = ingest(ingest_options([Source("unlabelled", str(folder))], tmp_path / "out", video_fps=2.0))
    assert report.counts == {"in": 4, "kept": 3, "quarantined": 1}  # the image, frames 0 and 3
    assert report.quarantined[0]["file"].endswith("broken.mp4")
    samples = list(read_manifest(tmp_path / "out" / "manifest.jsonl"))
    frames = [s for s in samples if s.group == "clip"]
    assert [s.meta["frame"] for s in frames] == [0, 3]
    for s in samples:
        assert s.mask[PARTS["pose"]].all() and s.mask[PARTS["face"]].all()  # the teacher found body and face
        assert not s.mask[PARTS["left_hand"]].any() and not s.keypoints[PARTS["left_hand"]].any()  # no hands: masked
        assert 0.3 < s.keypoints[33 + 1, 0] < 0.6  # the nose tip, in normalized image coordinates


def test_tfrecord_source_with_api_records_and_broken_files(tmp_path, photos):
    from holotune.data.tfrecord import KeypointRecord, write_tfrecord

    jpeg = (photos / "p0.jpg").read_bytes()
    keypoints = np.full((543, 3), 0.5, np.float32)
    folder = tmp_path / "records"
    folder.mkdir()
    # As the original API's create_tfrecord writes them: image, keypoints_3d, num_keypoints only.
    write_tfrecord(folder / "api.tfrecord", [KeypointRecord(jpeg, keypoints), KeypointRecord(jpeg, keypoints + 0.1)])
    write_tfrecord(folder / "crc.tfrecord", [KeypointRecord(jpeg, keypoints)])
    data = bytearray((folder / "crc.tfrecord").read_bytes())
    data[100] ^= 0xFF  # flip a payload byte: the data CRC no longer matches
    (folder / "crc.tfrecord").write_bytes(bytes(data))
    write_tfrecord(folder / "cut.tfrecord", [KeypointRecord(jpeg, keypoints)] * 2)
    (folder / "cut.tfrecord").write_bytes((folder / "cut.tfrecord").read_bytes()[:-500])  # truncated
    report = ingest(ingest_options([Source("tfrecord", str(folder))], tmp_path / "out"))
    assert report.counts == {"in": 5, "kept": 3, "quarantined": 2}
    reasons = {q["file"].rsplit("/", 1)[-1]: q for q in report.quarantined}
    assert "data CRC mismatch" in reasons["crc.tfrecord"]["reason"] and reasons["crc.tfrecord"]["index"] == 0
    assert "truncated" in reasons["cut.tfrecord"]["reason"] and reasons["cut.tfrecord"]["index"] == 1
    assert "the rest of this file cannot be read" in reasons["cut.tfrecord"]["reason"]
    samples = list(read_manifest(tmp_path / "out" / "manifest.jsonl"))
    api = [s for s in samples if "api.tfrecord" in s.source or s.meta.get("tfrecord_id") is None][:2]
    assert all(s.mask.sum() == 543 for s in api)  # no mask in the record: every point labelled
    np.testing.assert_allclose(api[1].keypoints, keypoints + 0.1, atol=1e-6)
