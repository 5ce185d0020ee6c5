"""The config contract: the committed params.yaml is exactly the composition of conf/, and conf/ is the
one source of every default a stage uses: each stage builds its typed options from its section in one
call, and no library dataclass carries a second default for a key conf/ sets."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _tool():
    spec = importlib.util.spec_from_file_location("params_tool", ROOT / "tools" / "params.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("config_name", ["config", "gestures", "pose"])
def test_params_yaml_equals_the_composition_of_conf(config_name):
    target = _tool().PARAMS_FILES[config_name]
    committed = yaml.safe_load((ROOT / target).read_text())
    assert committed == _tool().compose_params(ROOT / "conf", config_name), f"{target} is stale: run `make params`"


def test_dvc_is_set_up_for_hydra_composition():
    config = (ROOT / ".dvc" / "config").read_text()
    assert "[hydra]" in config and "enabled = True" in config
    assert "analytics = false" in config  # no telemetry calls from machines without internet


def test_library_never_imports_hydra():
    """Import every holotune module in a fresh interpreter: neither hydra nor omegaconf gets loaded."""
    import subprocess
    import sys

    code = ("import pkgutil, importlib, sys, holotune\n"
            "for m in pkgutil.walk_packages(holotune.__path__, 'holotune.'):\n"
            "    importlib.import_module(m.name)\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('hydra', 'omegaconf')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def _stage_options() -> dict:
    """Each stage's options built from the committed params.yaml, as the stage scripts build them."""
    from holotune.config import build, read_params
    from holotune.data.ingest import IngestOptions
    from holotune.data.shards import ShardOptions
    from holotune.evaluation.report import EvaluateOptions
    from holotune.pruning import PruneOptions
    from holotune.release import ExportOptions
    from holotune.training.finetune import FinetuneOptions

    params = read_params(ROOT / "params.yaml")
    finetune = FinetuneOptions.from_config(params)
    return {
        "ingest": (build(IngestOptions, params["ingest"], "ingest"), params["ingest"]),
        "tfrecord": (build(ShardOptions, params["tfrecord"], "tfrecord"), params["tfrecord"]),
        "finetune.hparams": (finetune.hparams, params["finetune"]),
        "finetune.run": (finetune.run, {**params["finetune"], **params["trainer"]}),
        "finetune.augment": (finetune.run.augment, params["finetune"]["augment"]),
        "evaluate": (build(EvaluateOptions, params["evaluate"], "evaluate"), params["evaluate"]),
        "evaluate.roi_jitter": (build(EvaluateOptions, params["evaluate"], "evaluate").roi_jitter,
                                params["evaluate"]["roi_jitter"]),
        "prune": (build(PruneOptions, params["prune"], "prune"), params["prune"]),
        "export": (ExportOptions.from_config(params), params["export"]),
    }


def test_conf_is_the_only_source_of_each_stage_default():
    """A field conf/ sets has no dataclass default; a field without a default is set by conf/; values match."""
    import dataclasses

    from holotune.config import conf_fields

    for name, (options, section) in _stage_options().items():
        cls = type(options)
        fields = {f.name for f in dataclasses.fields(cls)}
        required = set(conf_fields(cls))
        set_by_conf = fields & set(section)
        assert set_by_conf == required, (name, sorted(set_by_conf ^ required))
        for key in set_by_conf:
            value = getattr(options, key)
            expected = section[key]
            if dataclasses.is_dataclass(value):
                continue  # checked as its own entry
            if isinstance(value, tuple):
                value = [dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for v in value]
            assert value == expected, (name, key, value, expected)


def test_lora_and_model_options_come_from_conf():
    from holotune.config import read_params
    from holotune.training.finetune import FinetuneOptions

    params = read_params(ROOT / "params.yaml")
    model = FinetuneOptions.from_config(params).model
    f = params["finetune"]
    assert (model.lora.r, model.lora.lora_alpha, model.lora.placement) == (f["lora_rank"], f["lora_alpha"],
                                                                             f["lora_placement"])
    assert (model.module, model.task_type, model.freeze_backbone) == (params["module"]["name"],
                                                                       params["task"]["type"], f["freeze_backbone"])


def test_library_dataclasses_have_no_second_default():
    """Calling the library with its own defaults cannot bring back a configuration conf/ fixed
    (e.g. presence_weight 0.1 with negatives, which called 100 % of non-faces faces)."""
    import pytest

    from holotune.training.finetune import RunOptions
    from holotune.training.module import TrainHParams

    with pytest.raises(TypeError, match="presence_weight"):
        TrainHParams()
    with pytest.raises(TypeError, match="negative_fraction"):
        RunOptions()


def test_unknown_and_missing_keys_are_named():
    import pytest

    from holotune.config import ConfigError, build, read_params, with_overrides
    from holotune.data.ingest import IngestOptions
    from holotune.training.finetune import FinetuneOptions

    params = read_params(ROOT / "params.yaml")
    with pytest.raises(ConfigError, match=r"ingest: unknown key\(s\) \['bogus'\]"):
        build(IngestOptions, {**params["ingest"], "bogus": 1}, "ingest")
    section = dict(params["ingest"])
    del section["test_split"]
    with pytest.raises(ConfigError, match=r"ingest.test_split: missing"):
        build(IngestOptions, section, "ingest")
    with pytest.raises(ConfigError, match=r"finetune: unknown key\(s\) \['epoch'\]"):
        FinetuneOptions.from_config(with_overrides(params, {"finetune.epoch": 3}))
    with pytest.raises(ConfigError, match=r"ingest.sources\[0\].path: missing"):
        build(IngestOptions, {**params["ingest"], "sources": [{"kind": "default"}]}, "ingest")


def test_a_stage_with_a_bad_key_exits_1_naming_it(tmp_path):
    """The stage script, not only the library: a mistyped key fails before any work, with the key named."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(ROOT / "stages" / "tfrecord.py"), "+tfrecord.shard_sise=10",
                           f"tfrecord.out_dir={tmp_path / 'shards'}", "hydra.run.dir=.", "hydra.output_subdir=null"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1
    assert "tfrecord: unknown key(s) ['shard_sise']" in done.stderr
    assert not (tmp_path / "shards").exists()
