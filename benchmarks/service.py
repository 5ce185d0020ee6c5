"""HTTP inference throughput and latency of ``holotune serve``, and a hot swap under load.

A real server (``holotune serve`` in a child process, uvicorn on 127.0.0.1) with a temporary
MLflow registry: ``holotune-face_mesh`` v1 = the stock model (champion), v2 = the same model with
every landmark moved by 2 crop pixels. Clients (threads, one keep-alive ``httpx`` connection each)
post skimage's astronaut (512x512 JPEG) to ``/api/v1/infer``:

* ``load``: for each client count, ``--requests`` requests in all; requests/s (completed / wall
  time) and the p50 / p99 of each request's latency, for each ``--infer-concurrency`` (images the
  server processes at once);
* ``swap``: 4 clients, ``--swap-requests`` in all; v2 is promoted after a third of them, and the
  server's poller (every 0.5 s) loads, checks and swaps it. Reported: failed requests, the delay
  from the promotion to the first response computed by v2, and latency before / around / after.
* ``direct``: the same image through :class:`holotune.runtime.Holistic` in this process, no HTTP
  (the floor the service adds to).

Loopback only; every loop is bounded by a request count. Compare ratios, not absolute times.

    .venv/bin/python benchmarks/service.py [--requests 120] [--clients 1,2,4,8] [--infer-concurrency 1,2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from report import ROOT, add_json_out, utc_now, write_json

from holotune.samples import sample_images

sys.path.insert(0, str(ROOT / "tests"))
from service_harness import ServerProcess, build_registry, jpeg

SWAP_CLIENTS = 4


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def run_clients(server: ServerProcess, image: bytes, clients: int, total: int, on_response=None) -> list[dict]:
    """``total`` requests from ``clients`` threads; one record per request (start, end, status, version)."""
    records: list[dict] = []
    lock = threading.Lock()
    issued = [0]

    def client() -> None:
        with server.client(timeout=60) as http:
            while True:
                with lock:
                    if issued[0] >= total:
                        return
                    issued[0] += 1
                start = time.perf_counter()
                try:
                    r = http.post("/api/v1/infer", files={"image": ("astronaut.jpg", image, "image/jpeg")})
                    status = r.status_code
                    version = r.json()["models"]["face_mesh"] if status == 200 else None
                except Exception:  # a transport error counts as a failed request
                    status, version = 0, None
                record = {"start": start, "end": time.perf_counter(), "status": status, "version": version}
                with lock:
                    records.append(record)
                    if on_response:
                        on_response(len(records))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return records


def summarize(records: list[dict]) -> dict:
    latencies = [(r["end"] - r["start"]) * 1000 for r in records if r["status"] == 200]
    wall = max(r["end"] for r in records) - min(r["start"] for r in records)
    return {"requests": len(records), "failed": sum(r["status"] != 200 for r in records),
            "requests_per_s": len(latencies) / wall, "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99), "max_ms": max(latencies) if latencies else float("nan")}


def direct_latency(image_rgb, runs: int = 30) -> dict:
    from holotune.runtime import Holistic

    with Holistic() as holistic:
        for _ in range(3):
            holistic.process(image_rgb)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            holistic.process(image_rgb)
            times.append((time.perf_counter() - start) * 1000)
    return {"runs": runs, "p50_ms": statistics.median(times), "p99_ms": percentile(times, 99),
            "per_s_one_thread": 1000 / statistics.median(times)}


def swap_run(server: ServerProcess, image: bytes, total: int, tracking_uri: str, version: str) -> dict:
    from holotune.registry import promote

    promoted = {}

    def on_response(done: int) -> None:
        if done == total // 3 and not promoted:
            promoted["at"] = time.perf_counter()  # noted before the call: the alias moves inside it
            threading.Thread(target=lambda: promote("holotune-face_mesh", version, tracking_uri=tracking_uri)).start()

    records = run_clients(server, image, SWAP_CLIENTS, total, on_response)
    records.sort(key=lambda r: r["end"])
    first_new = min((r["end"] for r in records if r["version"] == version), default=None)
    out = {"clients": SWAP_CLIENTS, **summarize(records),
           "served_by": {v: sum(r["version"] == v for r in records) for v in sorted({str(r["version"]) for r in records})},
           "swap_delay_s": None if first_new is None else first_new - promoted["at"],
           "old_after_new": sum(1 for r in records if first_new and r["start"] > first_new and r["version"] != version)}
    if first_new is not None:
        for name, keep in (("before", lambda r: r["end"] < promoted["at"]),
                           ("around", lambda r: promoted["at"] <= r["end"] <= first_new + 1.0),
                           ("after", lambda r: r["end"] > first_new + 1.0)):
            part = [r for r in records if keep(r)]
            out[name] = summarize(part) if part else None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=120, help="requests per client count")
    parser.add_argument("--clients", default="1,2,4,8")
    parser.add_argument("--infer-concurrency", default="1,2", help="server settings to compare")
    parser.add_argument("--swap-requests", type=int, default=240,
                        help="requests of the hot-swap run (enough to outlast the swap: a few seconds' worth)")
    add_json_out(parser, "service")
    args = parser.parse_args()

    astronaut = sample_images()["astronaut"]
    image = jpeg(astronaut)
    report = {"date": utc_now(), "machine": platform.machine(),
              "cpus": os.cpu_count(), "python": platform.python_version(), "image": "astronaut 512x512 JPEG q95",
              "direct": direct_latency(astronaut), "load": [], "swap": {}}
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "workspace"
        workspace.mkdir()
        uri = f"sqlite:///{workspace / 'mlflow.db'}"
        versions = build_registry(workspace, uri)
        for concurrency in [int(c) for c in args.infer_concurrency.split(",")]:
            server = ServerProcess(workspace, tracking_uri=uri, log_name=f"server-{concurrency}.log",
                                   args=["--poll-interval", "0.5", "--no-finetune-api",
                                         "--infer-concurrency", str(concurrency)]).start()
            try:
                run_clients(server, image, 2, 6)  # warm-up
                for clients in [int(c) for c in args.clients.split(",")]:
                    row = {"infer_concurrency": concurrency, "clients": clients,
                           **summarize(run_clients(server, image, clients, args.requests))}
                    report["load"].append(row)
                    print(f"  load: infer_concurrency {concurrency}, {clients} clients: "
                          f"{row['requests_per_s']:.1f} req/s", file=sys.stderr)
                if concurrency == 1:
                    report["swap"] = swap_run(server, image, args.swap_requests, uri, versions["shifted"])
                    from holotune.registry import promote

                    promote("holotune-face_mesh", versions["stock"], tracking_uri=uri)  # back for the next server
            finally:
                server.stop()

    print(f"\nholotune serve, /api/v1/infer on {report['image']} ({report['cpus']} CPUs); "
          f"direct Holistic.process: p50 {report['direct']['p50_ms']:.1f} ms "
          f"({report['direct']['per_s_one_thread']:.1f} images/s, one caller, no HTTP)")
    print(f"{'infer_conc':>10}{'clients':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}")
    for row in report["load"]:
        print(f"{row['infer_concurrency']:>10}{row['clients']:>9}{row['requests_per_s']:>9.1f}"
              f"{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}{row['failed']:>8}")
    swap = report["swap"]
    if swap:
        delay = swap["swap_delay_s"]
        first = ("NO v2 response (the run ended before the swap: raise --swap-requests)" if delay is None else
                 f"first v2 response {delay:.2f} s after the promotion (poll interval 0.5 s)")
        print(f"\nhot swap under load ({swap['clients']} clients, {swap['requests']} requests, champion v1 -> v2 "
              f"after a third): {swap['failed']} failed, served by {swap['served_by']}, {first}, "
              f"{swap['old_after_new']} old-version responses to requests sent after it")
        for name in ("before", "around", "after"):
            if swap.get(name):
                s = swap[name]
                print(f"  {name:>7}: {s['requests']:>4} requests, {s['requests_per_s']:.1f} req/s, "
                      f"p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, max {s['max_ms']:.1f} ms")
    print()
    write_json(report, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
