"""What every benchmark's JSON report shares: where it goes, the machine facts it records, and the write.

Each script keeps its own keys (``"date"`` or ``"timestamp"``, ``"cpus"`` or ``"cpu_count"``, ...); this
module gives the values and the one way to write the file::

    from report import ROOT, add_json_out, load_average, utc_now, write_json

    add_json_out(parser, "export")                     # --json-out, default benchmarks/results/export.json
    write_json({"date": utc_now(), "machine": {"load_average": load_average()}, ...}, args.json_out)

The scripts run as ``python benchmarks/<name>.py``, so this folder is on ``sys.path`` and they import
it as ``report``. The settings a benchmark does not fix itself come from ``ROOT / "params.yaml"``
(the composed ``conf/``, the one source of stage defaults).
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The project root (``params.yaml``, ``data/``)."""

RESULTS = Path(__file__).resolve().parent / "results"
"""Where the JSON reports go by default (git-ignored)."""


def add_json_out(parser: argparse.ArgumentParser, name: str) -> None:
    """``--json-out PATH``, by default ``benchmarks/results/<name>.json``."""
    parser.add_argument("--json-out", default=str(RESULTS / f"{name}.json"),
                        help=f"where the JSON report goes (default: benchmarks/results/{name}.json)")


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: how busy the (shared) machine was."""
    return list(os.getloadavg())


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (``"unknown"`` where there is none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")


def versions(*packages: str) -> dict[str, str]:
    """Installed version of each distribution package."""
    return {package: version(package) for package in packages}


def write_json(report: dict, path: str | os.PathLike, note: str = "") -> Path:
    """Write ``report`` as indented JSON to ``path`` (creating its folder); prints ``wrote PATH (note)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}" + (f" ({note})" if note else ""))
    return path
