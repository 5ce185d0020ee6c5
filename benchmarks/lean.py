"""The lean serving install: its size, ``holotune infer``'s cold start and ``holotune serve``'s first
request, next to the full install (the project's ``.venv``).

The lean venv is built as tests/test_lean_install.py and the Dockerfile's serve stage build it (a copy
of the project, the stock-models wheel from this full install, ``tools/install_serving.sh``), or an
existing one is reused (``--venv DIR``; ``--keep DIR`` builds it there and keeps it). Reported:

* **size**: the venv on disk (as ``du`` counts it) against the full ``.venv`` (goal: <= 500 MB; in MiB, as ``du -m``), and
  by group of distributions: the base install, the ``registry`` extra (what it adds over the base),
  the stock-models wheel, pip and setuptools;
* **cold start**: ``holotune infer astronaut.png --json`` in a new process, wall time, median of
  ``--runs`` (goal: <= 1.5 s); and its parts, in another process: the interpreter (``python -c pass``),
  the imports ``holotune infer`` does, the stock-model sessions (ONNX Runtime), the first inference;
* **service**: ``holotune serve`` on 127.0.0.1 (loopback: no token), from the process start to the
  first 200 of ``/api/v1/finetune/status``, on a new workspace (the registry's SQLite database is
  created then) and again on the same one; the first ``POST /api/v1/infer`` and the median of the
  next ``--requests``.

Loopback only; every loop is bounded. Compare ratios, not absolute times (2 shared cores here).

    .venv/bin/python benchmarks/lean.py [--venv DIR | --keep DIR] [--runs 5] [--requests 5] [--no-full]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from report import ROOT, add_json_out, load_average, utc_now, write_json

sys.path.insert(0, str(ROOT / "tests"))
from lean_harness import ISOLATED, build_lean_venv, du_bytes, lean_env, lean_server, photo, venv_problem
from service_harness import free_port

MB = 1024 * 1024  # MiB, as du -m counts
SIZE_GOAL_MB = 500
COLD_START_GOAL_S = 1.5

# Run inside a venv: the size of each group of distributions (allocated blocks of the files RECORD lists).
_SIZES = r"""
import importlib.metadata as md, json, os, re, sys
from packaging.requirements import Requirement

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

dists = {norm(d.metadata["Name"]): d for d in md.distributions()}

def closure(name, extras=()):
    seen, stack = set(), [(name, tuple(extras))]
    while stack:
        name, extras = stack.pop()
        key = (norm(name), extras)
        if key in seen or norm(name) not in dists:
            continue
        seen.add(key)
        for text in dists[norm(name)].requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (extras or ("",))):
                stack.append((req.name, tuple(sorted(req.extras))))
    return {n for n, _ in seen}

def size(name):
    total = 0
    for f in dists[name].files or []:
        try:
            total += os.stat(dists[name].locate_file(f)).st_blocks * 512
        except OSError:
            pass
    return total

base = closure("holotune") - {"holotune"}
registry = closure("holotune", ("registry",)) - base - {"holotune"}
groups = {"base": base, "registry": registry, "stock_models": {"holotune-stock-models"}, "holotune": {"holotune"},
          "pip_setuptools": {"pip", "setuptools"} & set(dists)}
rest = set(dists) - set().union(*groups.values())
groups["other"] = rest
out = {g: {"bytes": sum(size(n) for n in names), "distributions": sorted(names)} for g, names in groups.items()}
out["largest"] = sorted(((size(n), n) for n in dists), reverse=True)[:8]
print(json.dumps(out))
"""

# Run inside a venv: what `holotune infer` does, timed by phase (imports, sessions, first inference).
_PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
import holotune.cli
from holotune.runtime import Holistic
from holotune.runtime.image import load_image
import holotune.runtime.holistic, holotune.runtime.smoothing, holotune.runtime.video
t1 = time.perf_counter()
from holotune.runtime.sessions import ensure_stock_models
ensure_stock_models()
holistic = Holistic()
t2 = time.perf_counter()
result = holistic.process(load_image(sys.argv[1]))
json.dumps(result.to_dict())
t3 = time.perf_counter()
holistic.close()
print(json.dumps({"imports_s": t1 - t0, "sessions_s": t2 - t1, "first_inference_s": t3 - t2,
                  "face": result.face is not None}))
"""


def wall(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed, done


def cold_starts(installs: dict[str, tuple[Path, dict[str, str]]], image: Path, home: Path, runs: int) -> dict:
    """Per install: `holotune infer` wall times (a new process each) and the phase breakdown (medians);
    the installs take turns in each round, so a busy moment of the machine hits both."""
    samples = {name: {"infer": [], "interpreter": [], "phases": []} for name in installs}
    for _ in range(runs):
        for name, (venv, env) in installs.items():
            bin_ = venv / "bin"
            samples[name]["infer"].append(wall([str(bin_ / "holotune"), "infer", str(image), "--json"], env, home)[0])
            samples[name]["interpreter"].append(wall([str(bin_ / "python"), "-c", "pass"], env, home)[0])
            phases = wall([str(bin_ / "python"), "-c", _PHASES, str(image)], env, home)[1].stdout
            samples[name]["phases"].append(json.loads(phases))
    out = {}
    for name, s in samples.items():
        parts = {k: statistics.median(p[k] for p in s["phases"]) for k in ("imports_s", "sessions_s", "first_inference_s")}
        parts["interpreter_s"] = statistics.median(s["interpreter"])
        infer = statistics.median(s["infer"])
        out[name] = {"infer_wall_s": infer, "infer_wall_runs_s": s["infer"], **parts,
                     "rest_s": infer - sum(parts.values())}  # argument parsing, JSON output, exit
    return out


def service(venv: Path, image: Path, env: dict[str, str], home: Path, name: str, requests: int) -> dict:
    """Ready time on a new workspace and on a restart; first and following /api/v1/infer latencies."""
    workspace = home / f"workspace-{name}"
    data = image.read_bytes()
    out: dict = {}
    for start in ("new_workspace", "restart"):
        with lean_server(venv, workspace, free_port(), env, home / f"serve-{name}.log") as server:
            out[f"ready_s_{start}"] = server.wait_ready()
            if start == "restart":
                continue
            latencies = []
            with httpx.Client(base_url=server.base, timeout=120) as http:
                for _ in range(1 + requests):
                    t = time.perf_counter()
                    r = http.post("/api/v1/infer", files={"image": (image.name, data, "image/png")})
                    latencies.append((time.perf_counter() - t) * 1000)
                    if r.status_code != 200 or r.json().get("face") is None:
                        raise RuntimeError(f"POST /api/v1/infer: {r.status_code} {r.text[:500]}")
            out["first_request_ms"] = latencies[0]
            out["next_requests_median_ms"] = statistics.median(latencies[1:]) if requests else None
    return out


def sizes(venv: Path, env: dict[str, str], home: Path) -> dict:
    groups = json.loads(wall([str(venv / "bin" / "python"), "-c", _SIZES], env, home)[1].stdout)
    return {"venv_mb": du_bytes(venv) / MB, "groups_mb": {g: v["bytes"] / MB for g, v in groups.items() if g != "largest"},
            "groups": {g: v["distributions"] for g, v in groups.items() if g != "largest"},
            "largest_mb": {name: size / MB for size, name in groups["largest"]}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--venv", type=Path, help="an existing lean venv to measure (default: build a new one)")
    where.add_argument("--keep", type=Path, help="build the lean venv at this path (must not exist) and keep it")
    parser.add_argument("--runs", type=int, default=5, help="cold starts per measurement (median)")
    parser.add_argument("--requests", type=int, default=5, help="requests after the first (median)")
    parser.add_argument("--no-full", action="store_true", help="skip the full install's figures")
    parser.add_argument("--python", default="python3.11", help="interpreter that creates the lean venv")
    add_json_out(parser, "lean")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="holotune-lean-") as tmp:
        home = Path(tmp)
        env = lean_env(home)
        report: dict = {"date": utc_now(), "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                                      "load_average": load_average()}}
        if args.venv:
            venv = args.venv.resolve()
            report["install_s"] = None
        else:
            problem = venv_problem(args.python)
            if problem:
                print(f"lean.py: {problem}", file=sys.stderr)
                return 2
            build_root = args.keep.resolve() if args.keep else home / "build"
            build_root.mkdir(parents=True, exist_ok=args.keep is None)
            start = time.perf_counter()
            venv, done = build_lean_venv(build_root, args.python)
            report["install_s"] = time.perf_counter() - start
            if done.returncode != 0:
                print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
                return 1
        image = photo(home / "astronaut.png")
        report["image"] = "skimage astronaut.png (512x512)"
        print(f"lean venv {venv}: measuring size, cold start ({args.runs} runs), service...", file=sys.stderr)
        installs = {"lean": (venv, env)}
        if not args.no_full:  # the full install with its own model cache
            installs["full"] = (ROOT / ".venv", {k: v for k, v in os.environ.items() if k not in ISOLATED})
        report["lean"] = sizes(venv, env, home)
        if "full" in installs:
            report["full"] = {"venv_mb": du_bytes(installs["full"][0]) / MB}
        for name, cold in cold_starts(installs, image, home, args.runs).items():
            report[name]["cold_start"] = cold
        for name, (path, install_env) in installs.items():
            report[name]["service"] = service(path, image, install_env, home, name, args.requests)
    print_table(report)
    write_json(report, args.json_out)
    return 0


def print_table(report: dict) -> None:
    lean, full = report["lean"], report.get("full")
    print(f"\nthe lean serving install vs the full install ({report['machine']['cpus']} CPUs, image {report['image']})")
    print(f"{'':<44}{'lean':>10}{'full':>10}{'goal':>10}")

    def row(label: str, key, fmt: str, goal: str = "") -> None:
        values = [key(lean), key(full) if full else None]
        cells = "".join(f"{'-' if v is None else format(v, fmt):>10}" for v in values)
        print(f"{label:<44}{cells}{goal:>10}")

    row("venv on disk, MiB (du)", lambda r: r["venv_mb"], ".0f", f"<= {SIZE_GOAL_MB}")
    for group in ("base", "registry", "stock_models", "pip_setuptools", "holotune", "other"):
        print(f"{'  ' + group.replace('_', ' ') + ', MiB':<44}{lean['groups_mb'][group]:>10.0f}")
    row("holotune infer, cold, wall s (median)", lambda r: r["cold_start"]["infer_wall_s"], ".2f",
        f"<= {COLD_START_GOAL_S}")
    for key, label in (("interpreter_s", "interpreter"), ("imports_s", "imports"),
                       ("sessions_s", "stock-model sessions"), ("first_inference_s", "first inference"),
                       ("rest_s", "the rest (arguments, output, exit)")):
        row(f"  {label}, s", lambda r, k=key: r["cold_start"][k], ".2f")
    row("holotune serve ready, new workspace, s", lambda r: r["service"]["ready_s_new_workspace"], ".2f")
    row("holotune serve ready, restart, s", lambda r: r["service"]["ready_s_restart"], ".2f")
    row("first POST /api/v1/infer, ms", lambda r: r["service"]["first_request_ms"], ".0f")
    row("next requests, median ms", lambda r: r["service"]["next_requests_median_ms"], ".0f")
    print("largest in the lean venv: "
          + ", ".join(f"{n} {mb:.0f} MiB" for n, mb in lean["largest_mb"].items()))
    if report.get("install_s"):
        print(f"lean install (wheel + tools/install_serving.sh): {report['install_s']:.0f} s")
    print()


if __name__ == "__main__":
    sys.exit(main())
