"""The stock ONNX models as an artifact of their own: a small data wheel the lean install serves from.

    holotune models package --out dist/     # full install: export (or reuse), verify, write the wheel
    pip install dist/holotune_stock_models-0.10.21+r2-py3-none-any.whl

The lean serving install (``pip install holotune``, no ``[train]`` extra) has no torch, so it cannot
export MediaPipe's ``.tflite`` files to ONNX itself. The exports are built once, on a full install,
and shipped as the wheel ``holotune_stock_models-<mediapipe version>+r<export revision>``: one
package, ``holotune_stock_models``, holding the six ``<model>.onnx`` files and ``manifest.json``
(each file's sha256 and size, the sha256 of the ``.tflite`` it was exported from, the MediaPipe
version and export revision). The runtime finds the installed package without importing it
(:func:`installed_models`, used by :func:`holotune.runtime.sessions.stock_model_dir`).

The wheel is written with the standard library (``zipfile``: METADATA, WHEEL and a RECORD with
every file's sha256) and is reproducible: the same exports give the same bytes.

:data:`SERVING_INSTALL` is the one script that makes the lean install (a fresh venv, the base
dependencies pinned by ``requirements.lock``, the stock-models wheel); the Dockerfile's serve stage
and ``tests/test_lean_install.py`` both run it.

This module imports only the standard library at import time; packaging and verifying import the
training stack (torch for a missing export, the TFLite interpreter for the check) when called.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from holotune import __version__

PACKAGE = "holotune_stock_models"
DIST_NAME = "holotune-stock-models"
MANIFEST = "manifest.json"
# The lean install, in one place: `tools/install_serving.sh VENV PROJECT WHEEL_DIR` (relative to the project).
SERVING_INSTALL = "tools/install_serving.sh"
DEFAULT_TOLERANCE = 1e-2
# Fixed zip entry times: the wheel's bytes depend on its contents only.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class PackageError(RuntimeError):
    """The stock models cannot be packaged: an export is missing or fails verification (named)."""


def package_version() -> str:
    """``<mediapipe version>+r<export revision>``, e.g. ``0.10.21+r2``."""
    from holotune.runtime.sessions import EXPORT_REVISION, MEDIAPIPE_VERSION

    return f"{MEDIAPIPE_VERSION}+r{EXPORT_REVISION}"


def wheel_filename() -> str:
    """``holotune_stock_models-0.10.21+r2-py3-none-any.whl``."""
    return f"{PACKAGE}-{package_version()}-py3-none-any.whl"


@dataclass(frozen=True)
class InstalledModels:
    """The installed ``holotune_stock_models`` package.

    Attributes:
        directory: the package folder (the ``.onnx`` files and ``manifest.json``).
        version: the manifest's version (``0.10.21+r2``), or ``None`` when it cannot be read.
        manifest: the parsed ``manifest.json`` (empty when unreadable).
        problem: why this holotune cannot serve from it (another MediaPipe version or export
            revision, no readable manifest), or ``None``.
    """

    directory: Path
    version: str | None
    manifest: dict
    problem: str | None


def installed_models() -> InstalledModels | None:
    """The installed stock-models package, found without importing it; ``None`` if not installed."""
    from holotune.runtime.sessions import EXPORT_REVISION, MEDIAPIPE_VERSION

    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(next(iter(spec.submodule_search_locations)))
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        return InstalledModels(directory, None, {}, f"{directory / MANIFEST}: unreadable ({exc})")
    version = manifest.get("version")
    wanted = (manifest.get("mediapipe"), manifest.get("export_revision"))
    if wanted != (MEDIAPIPE_VERSION, EXPORT_REVISION):
        return InstalledModels(directory, version, manifest,
                               f"the installed {PACKAGE} {version} holds mediapipe {wanted[0]} exports of revision "
                               f"{wanted[1]}; this holotune needs {package_version()}")
    return InstalledModels(directory, version, manifest, None)


def missing_models_help(directory: Path, missing: list[str], installed: InstalledModels | None) -> str:
    """What to do when the stock ONNX files are missing and cannot be exported here (no torch)."""
    files = ", ".join(f"{name}.onnx" for name in missing)
    why = f" ({installed.problem})" if installed is not None and installed.problem else ""
    return (f"the stock ONNX models are not installed: no {files} in {directory}{why}. Exporting them needs the "
            f"training install (pip install 'holotune[train]'). On the serving install, install the stock-models "
            f"wheel ({wheel_filename()}, built on a full install by `holotune models package --out DIR`), or set "
            f"HOLOTUNE_ONNX_DIR to a folder holding the six .onnx files")


def _tflite_file(name: str) -> Path:
    """Model ``name``'s ``.tflite`` inside the installed mediapipe, found without importing it (or torch)."""
    from holotune.models.spec import mediapipe_root, tflite_path

    try:
        mediapipe_root()
    except FileNotFoundError:
        raise PackageError("the mediapipe package is not installed: packaging the stock models needs the training "
                           "install (pip install 'holotune[train]')") from None
    try:
        return tflite_path(name)
    except FileNotFoundError as exc:
        raise PackageError(str(exc)) from None


def build_manifest(onnx_dir: str | Path) -> dict:
    """``manifest.json`` for the six exports in ``onnx_dir``: sha256 and size of each, and of the
    ``.tflite`` it was exported from."""
    from holotune.media import sha256_of
    from holotune.models.spec import MODEL_SPECS
    from holotune.runtime.sessions import EXPORT_REVISION, MEDIAPIPE_VERSION

    onnx_dir = Path(onnx_dir)
    models = {}
    for name in MODEL_SPECS:
        path = onnx_dir / f"{name}.onnx"
        if not path.is_file():
            raise PackageError(f"{path}: missing (export it with `holotune models export --dir {onnx_dir}`)")
        tflite = _tflite_file(name)
        models[name] = {"file": path.name, "sha256": sha256_of(path), "bytes": path.stat().st_size,
                        "tflite": MODEL_SPECS[name].tflite_path, "tflite_sha256": sha256_of(tflite)}
    return {"package": PACKAGE, "version": package_version(), "mediapipe": MEDIAPIPE_VERSION,
            "export_revision": EXPORT_REVISION, "built_by": f"holotune {__version__}", "models": models}


def verify_exports(onnx_dir: str | Path, tolerance: float = DEFAULT_TOLERANCE) -> dict[str, dict[str, float]]:
    """Check each export in ``onnx_dir`` as it will be served: it opens as a :class:`ModelSession`
    (the stock signature), and on the real photo crops ``holotune models verify`` uses, every output
    under ONNX Runtime matches MediaPipe's ``.tflite`` under the reference TFLite interpreter.

    Returns:
        model -> output -> max abs difference.

    Raises:
        PackageError: a model that fails, naming the model, the output and the difference.
    """
    import numpy as np

    from holotune.models.spec import MODEL_SPECS
    from holotune.models.verification import compare_outputs, run_tflite
    from holotune.runtime.sessions import ModelLoadError, ModelSession
    from holotune.samples import sample_crops

    report = {}
    for name, spec in MODEL_SPECS.items():
        path = Path(onnx_dir) / f"{name}.onnx"
        try:
            session = ModelSession(spec, path)
        except ModelLoadError as exc:
            raise PackageError(str(exc)) from None
        inputs, _ = sample_crops(spec)
        reference = run_tflite(spec, inputs, path=_tflite_file(name))
        got = session.run(np.ascontiguousarray(inputs.transpose(0, 3, 1, 2)))
        report[name] = {o.name: compare_outputs(spec, o.name, got[o.name], ref)
                        for o, ref in zip(spec.outputs, reference)}
        bad = {k: v for k, v in report[name].items() if not v <= tolerance}
        if bad:
            raise PackageError(f"{path}: differs from MediaPipe's {spec.tflite_path} beyond {tolerance:g}: {bad}")
    return report


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(onnx_dir: str | Path, manifest: dict, out_dir: str | Path) -> Path:
    """Write the stock-models wheel of the exports in ``onnx_dir`` into ``out_dir``; returns its path."""
    from holotune.runtime.sessions import MEDIAPIPE_VERSION

    version = manifest["version"]
    dist_info = f"{PACKAGE}-{version}.dist-info"
    init = (f'"""MediaPipe {MEDIAPIPE_VERSION}\'s Holistic models as ONNX exports, for holotune\'s runtime '
            f'(`holotune models package`).\n\nThe files and their sha256 are listed in manifest.json; holotune finds '
            f'this folder without importing it."""\n\nfrom pathlib import Path\n\nDIRECTORY = Path(__file__).parent\n')
    files: list[tuple[str, bytes]] = [(f"{PACKAGE}/__init__.py", init.encode()),
                                      (f"{PACKAGE}/{MANIFEST}", (json.dumps(manifest, indent=2, sort_keys=True)
                                                                 + "\n").encode())]
    for entry in sorted(manifest["models"].values(), key=lambda e: e["file"]):  # the same order, however read
        files.append((f"{PACKAGE}/{entry['file']}", (Path(onnx_dir) / entry["file"]).read_bytes()))
    metadata = (f"Metadata-Version: 2.1\nName: {DIST_NAME}\nVersion: {version}\n"
                f"Summary: MediaPipe {MEDIAPIPE_VERSION} Holistic's six models as ONNX exports for holotune's "
                f"torch-free runtime\nLicense: Apache-2.0\nRequires-Python: >=3.8\n\n"
                f"Built by `holotune models package` ({manifest['built_by']}) from the .tflite files of "
                f"mediapipe=={MEDIAPIPE_VERSION} (Apache-2.0); {MANIFEST} lists each file's sha256.\n")
    wheel = f"Wheel-Version: 1.0\nGenerator: holotune {__version__}\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files += [(f"{dist_info}/METADATA", metadata.encode()), (f"{dist_info}/WHEEL", wheel.encode())]
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files) + f"{dist_info}/RECORD,,\n"
    files.append((f"{dist_info}/RECORD", record.encode()))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PACKAGE}-{version}-py3-none-any.whl"
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            info = zipfile.ZipInfo(name, _ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    partial.replace(target)  # atomic: a half-written wheel never has the wheel's name
    return target


def read_wheel(path: str | Path) -> dict:
    """Check a stock-models wheel: every file against RECORD's sha256 and size, every model against
    the manifest's sha256; returns the manifest.

    Raises:
        PackageError: naming the wheel and the file that does not match.
    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise PackageError(f"{path}: not a readable wheel: {exc}") from None
    with archive:
        names = archive.namelist()
        records = [n for n in names if n.endswith(".dist-info/RECORD")]
        if len(records) != 1:
            raise PackageError(f"{path}: expected one .dist-info/RECORD, found {records}")
        rows = [line.split(",") for line in archive.read(records[0]).decode().splitlines() if line]
        listed = {row[0] for row in rows}
        if listed != set(names):
            raise PackageError(f"{path}: RECORD and the archive differ: {sorted(listed ^ set(names))}")
        for name, digest, size in rows:
            if name == records[0]:
                continue
            data = archive.read(name)
            if digest != _record_hash(data) or size != str(len(data)):
                raise PackageError(f"{path}: {name} does not match its RECORD hash")
        try:
            manifest = json.loads(archive.read(f"{PACKAGE}/{MANIFEST}"))
        except KeyError:
            raise PackageError(f"{path}: no {PACKAGE}/{MANIFEST}") from None
        for model, entry in manifest["models"].items():
            data = archive.read(f"{PACKAGE}/{entry['file']}")
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise PackageError(f"{path}: {entry['file']} ({model}) does not match the manifest's sha256")
    return manifest


@dataclass(frozen=True)
class PackageResult:
    """What :func:`package_stock_models` did: the wheel, its manifest, and the verification's
    max abs differences per model and output (``None`` when not verified)."""

    wheel: Path
    manifest: dict
    verification: dict[str, dict[str, float]] | None


def package_stock_models(out_dir: str | Path, *, onnx_dir: str | Path | None = None, verify: bool = True,
                         tolerance: float = DEFAULT_TOLERANCE) -> PackageResult:
    """Export the stock models into ``onnx_dir`` (default: ``$HOLOTUNE_ONNX_DIR`` or the per-machine
    cache; existing exports are reused), verify them against MediaPipe's ``.tflite`` files, and write
    the stock-models wheel into ``out_dir``. Needs the full install (torch, mediapipe).

    Raises:
        PackageError: an export fails verification (no wheel is written then).
    """
    from holotune.export import export_stock_models
    from holotune.runtime.sessions import stock_export_dir

    onnx_dir = Path(onnx_dir) if onnx_dir else stock_export_dir()
    onnx_dir.mkdir(parents=True, exist_ok=True)
    export_stock_models(onnx_dir)  # only the missing ones
    manifest = build_manifest(onnx_dir)
    verification = verify_exports(onnx_dir, tolerance) if verify else None
    manifest_again = build_manifest(onnx_dir)
    if manifest_again != manifest:  # a file changed while we read it: do not ship a mix
        raise PackageError(f"{onnx_dir}: the exports changed while they were being packaged; run it again")
    return PackageResult(write_wheel(onnx_dir, manifest, out_dir), manifest, verification)


def describe(result: PackageResult) -> str:
    """A few lines for the command line: the wheel, its size, each model's file and check."""
    lines = [f"{result.wheel} ({result.wheel.stat().st_size / 1e6:.1f} MB)"]
    for name, entry in result.manifest["models"].items():
        check = ""
        if result.verification is not None:
            check = f"  max |onnx - tflite| {max(result.verification[name].values()):.2e}"
        lines.append(f"  {entry['file']:<34}{entry['bytes'] / 1e6:6.1f} MB  sha256 {entry['sha256'][:12]}{check}")
    return "\n".join(lines)

