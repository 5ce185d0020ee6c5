"""Distributed fine-tuning: a real 2-process Lightning DDP run (gloo, CPU) on localhost through the
Hydra stage (`stages/finetune.py trainer=ddp ...`) ends with both replicas holding bit-identical
weights, after each replica trained on a different half of the data.

The stage runs unchanged; a small driver (written into ``tmp_path``) executes it with a Lightning
callback that dumps, per rank, the world size, backend, the batches it saw and its weights before
and after training. Lightning re-runs the driver for rank 1 (with Hydra's overrides), so the
callback is in every replica. The multi-machine recipe (MASTER_ADDR/MASTER_PORT/NODE_RANK,
``trainer.num_nodes=2``) runs as two "nodes" on localhost in the slow test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "stages" / "finetune.py"
TIMEOUT_S = 240

DRIVER = textwrap.dedent('''
    """Run stages/finetune.py as __main__ with a callback that dumps each rank's state (test only)."""
    import hashlib
    import os
    from pathlib import Path

    import pytorch_lightning as pl
    import torch

    DUMP_DIR = Path(os.environ["HOLOTUNE_TEST_DUMP_DIR"])
    STAGE = os.environ["HOLOTUNE_TEST_STAGE"]


    def _digest(batch) -> str:
        """A hash of every tensor in a (nested) batch: which samples this rank trained on."""
        h = hashlib.sha256()

        def walk(x):
            if isinstance(x, torch.Tensor):
                h.update(x.detach().cpu().contiguous().numpy().tobytes())
            elif isinstance(x, dict):
                for k in sorted(x):
                    walk(x[k])
            elif isinstance(x, (list, tuple)):
                for v in x:
                    walk(v)
            else:
                h.update(repr(x).encode())

        walk(batch)
        return h.hexdigest()


    class RankDump(pl.Callback):
        def setup(self, trainer, pl_module, stage):
            self.initial = {k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}
            self.batches = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.batches.append(_digest(batch))

        def on_fit_end(self, trainer, pl_module):
            import torch.distributed as dist

            model = pl_module.model
            torch.save({
                "global_rank": trainer.global_rank, "local_rank": trainer.local_rank,
                "node_rank": trainer.node_rank, "world_size": trainer.world_size,
                "is_global_zero": trainer.is_global_zero, "strategy": type(trainer.strategy).__name__,
                "backend": dist.get_backend() if dist.is_initialized() else None,
                "dist_world_size": dist.get_world_size() if dist.is_initialized() else None,
                "global_step": trainer.global_step, "pid": os.getpid(), "batches": self.batches,
                "trainable": sorted(k for k, p in model.named_parameters() if p.requires_grad),
                "initial": self.initial,
                "final": {k: v.detach().clone() for k, v in model.state_dict().items()},
            }, DUMP_DIR / f"rank{trainer.global_rank}.pt")


    _init = pl.Trainer.__init__


    def _init_with_dump(self, *args, callbacks=None, **kwargs):
        _init(self, *args, callbacks=[*(callbacks or []), RankDump()], **kwargs)


    pl.Trainer.__init__ = _init_with_dump
    # Execute the stage as __main__ in this process: sys.argv[0] stays this driver, so Lightning's
    # launcher re-runs the driver (callback included) for the other local ranks.
    exec(compile(Path(STAGE).read_text(), STAGE, "exec"), {"__name__": "__main__", "__file__": STAGE})
''')


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(text: str, n: int = 4000) -> str:
    return text[-n:] if text else "(no output)"


def _stage_overrides(data: Path, work: Path) -> list[str]:
    return [
        f"finetune.shards_dir={data / 'shards'}", f"finetune.manifest={data / 'interim' / 'manifest.jsonl'}",
        f"finetune.out_dir={work / 'model'}", f"finetune.checkpoint_dir={work / 'ckpt'}",
        f"finetune.tracking_uri=sqlite:///{work / 'mlflow.db'}", f"finetune.tensorboard_dir={work / 'tb'}",
        "finetune.epochs=1", "finetune.batch_size=4", "finetune.learning_rate=3e-3", "finetune.warmup_steps=1",
        "finetune.lora_rank=4", "finetune.lora_placement=branch",
        "trainer=ddp", "trainer.accelerator=cpu", "trainer.limit_train_batches=3",
        f"hydra.run.dir={work / 'hydra'}",
    ]


def _launch(driver: Path, overrides: list[str], work: Path, env: dict) -> tuple[subprocess.Popen, Path]:
    """Start the driver in ``work`` (its cwd); output goes to ``work/log.txt`` (no pipe to fill and block)."""
    (work / "dump").mkdir(parents=True, exist_ok=True)
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "GROUP_RANK", "PL_GLOBAL_SEED")}
    full_env.update(env, HOLOTUNE_TEST_DUMP_DIR=str(work / "dump"), HOLOTUNE_TEST_STAGE=str(STAGE),
                    OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    log = work / "log.txt"
    with log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, str(driver), *overrides], cwd=work, env=full_env,
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


def _wait(launched: list[tuple[subprocess.Popen, Path]]) -> list[str]:
    """Wait for all to exit 0. On a failure or the timeout, kill each one's process group (it and the
    ranks Lightning started for it) and fail with the output tails."""
    deadline = time.monotonic() + TIMEOUT_S
    while any(proc.poll() is None for proc, _ in launched):
        failed = any(proc.returncode not in (None, 0) for proc, _ in launched)
        if failed or time.monotonic() > deadline:
            for proc, _ in launched:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            break
        time.sleep(0.2)
    problems = [f"process {i} exited {proc.returncode}" for i, (proc, _) in enumerate(launched) if proc.returncode]
    if problems:
        reason = "timed out after %ds" % TIMEOUT_S if time.monotonic() > deadline else ", ".join(problems)
        pytest.fail(f"DDP run failed: {reason}; output tails:\n" +
                    "\n---\n".join(_tail(log.read_text()) for _, log in launched))
    return [log.read_text() for _, log in launched]


def _load_dump(path: Path, log: str) -> dict:
    assert path.is_file(), f"no per-rank dump {path}; output tail:\n{_tail(log)}"
    return torch.load(path, weights_only=False)


def _check_replicas(dumps: list[dict], world_size: int, log: str) -> None:
    for rank, d in enumerate(dumps):
        assert (d["global_rank"], d["world_size"], d["dist_world_size"]) == (rank, world_size, world_size), \
            f"rank {rank}: {({k: d[k] for k in ('global_rank', 'world_size', 'dist_world_size')})}\n{_tail(log)}"
        assert d["backend"] == "gloo" and d["strategy"] == "DDPStrategy", (d["backend"], d["strategy"])
        assert d["is_global_zero"] == (rank == 0)
        assert d["global_step"] == 3 and len(d["batches"]) == 3, (d["global_step"], len(d["batches"]))
    assert len({d["pid"] for d in dumps}) == world_size, "the ranks were not separate processes"
    # Each replica trained on its own shard of the data (DistributedSampler) ...
    assert set(dumps[0]["batches"]).isdisjoint(dumps[1]["batches"]), "both ranks saw the same batches"
    # ... yet training moved the LoRA weights, and every replica ends with exactly the same weights.
    reference, other = dumps[0], dumps[1:]
    trainable = reference["trainable"]
    assert trainable and all("lora_" in k for k in trainable), trainable
    moved = [k for k in trainable if not torch.equal(reference["final"][k], reference["initial"][k])]
    assert moved, "training did not change any LoRA weight"
    assert any("lora_B" in k for k in moved), moved
    frozen = [k for k in reference["final"] if k not in trainable]
    assert all(torch.equal(reference["final"][k], reference["initial"][k]) for k in frozen), "a stock weight moved"
    for d in other:
        assert d["trainable"] == trainable
        assert d["final"].keys() == reference["final"].keys()
        differ = [k for k in reference["final"] if not torch.equal(d["final"][k], reference["final"][k])]
        assert not differ, f"rank {d['global_rank']} differs from rank 0 in {len(differ)} tensors: {differ[:5]}"
        # The starting points were the same too (same seed; DDP broadcasts rank 0's weights anyway).
        assert all(torch.equal(d["initial"][k], reference["initial"][k]) for k in trainable)


def _mlflow_runs(tracking_db: Path) -> list:
    import mlflow

    if not tracking_db.exists():
        return []
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tracking_db}")
    experiment = client.get_experiment_by_name("holotune-finetune")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def test_ddp_two_processes_end_with_identical_weights(shards, tmp_path):
    """`stages/finetune.py trainer=ddp trainer.devices=2` on one machine: Lightning launches rank 1."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    work = tmp_path / "run"
    overrides = [*_stage_overrides(shards, work), "trainer.devices=2"]
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    [log] = _wait([_launch(driver, overrides, work, env)])
    dumps = [_load_dump(work / "dump" / f"rank{rank}.pt", log) for rank in (0, 1)]
    _check_replicas(dumps, 2, log)
    assert {d["node_rank"] for d in dumps} == {0} and [d["local_rank"] for d in dumps] == [0, 1]
    # Rank 0 alone wrote the results: one model, one metrics file, one MLflow run.
    out = work / "model"
    assert (out / "model.pt").is_file() and (out / "adapter" / "adapter_config.json").is_file()
    assert json.loads((out / "metrics.json").read_text())["global_step"] == 3
    [run] = _mlflow_runs(work / "mlflow.db")
    assert run.data.params["lora_r"] == "4" and "train/loss_epoch" in run.data.metrics
    # What rank 0 saved is the replicas' common weights.
    from safetensors.torch import load_file

    saved = load_file(out / "adapter" / "adapter_model.safetensors")
    final = {k.replace(".default.", "."): v for k, v in dumps[0]["final"].items() if "lora_" in k}
    assert saved.keys() == final.keys() and all(torch.equal(saved[k], final[k]) for k in saved)


@pytest.mark.slow
def test_ddp_two_nodes_on_localhost(shards, tmp_path):
    """The multi-machine recipe, each "node" a process here: MASTER_ADDR/MASTER_PORT/NODE_RANK and
    `trainer.num_nodes=2 trainer.devices=1`; only node 0 (global rank 0) writes results."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    port = str(_free_port())
    works = [tmp_path / "node0", tmp_path / "node1"]  # each node its own folders, as on separate machines
    logs = _wait([_launch(driver, [*_stage_overrides(shards, work), "trainer.num_nodes=2", "trainer.devices=1"], work,
                          {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "NODE_RANK": str(node)})
                  for node, work in enumerate(works)])
    dumps = [_load_dump(work / "dump" / f"rank{node}.pt", log) for node, (work, log) in enumerate(zip(works, logs))]
    logs = "\n---\n".join(logs)
    _check_replicas(dumps, 2, logs)
    assert [d["node_rank"] for d in dumps] == [0, 1] and [d["local_rank"] for d in dumps] == [0, 0]
    assert (works[0] / "model" / "model.pt").is_file() and len(_mlflow_runs(works[0] / "mlflow.db")) == 1
    assert not (works[1] / "model" / "model.pt").exists() and not (works[1] / "model" / "metrics.json").exists()
    assert not (works[1] / "ckpt" / "last.ckpt").exists()
    assert _mlflow_runs(works[1] / "mlflow.db") == [], "node 1 created an MLflow run"
