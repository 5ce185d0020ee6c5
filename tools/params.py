"""The project's configuration contract: ``params.yaml`` is the plain composition of ``conf/``.

``gestures/params.yaml`` is the composition of ``conf/gestures.yaml`` (the gesture demo pipeline,
``gestures/dvc.yaml``), the same config with the gesture overrides; ``pose/params.yaml`` that of
``conf/pose.yaml`` (the pose pipeline, ``pose/dvc.yaml``).

DVC reads ``params.yaml``; Hydra composes ``conf/``. ``dvc exp run -S`` rewrites ``params.yaml``
from ``conf/`` (``hydra.enabled``), so the committed file must equal a fresh composition.
This is tooling (``make params`` and the config test); the ``holotune`` library never imports Hydra.

    python tools/params.py          # rewrite params.yaml from conf/
"""

from __future__ import annotations

from pathlib import Path

import yaml

# Root configs and the params file each one composes into, relative to the project root.
PARAMS_FILES = {"config": "params.yaml", "gestures": "gestures/params.yaml", "pose": "pose/params.yaml"}


def compose_params(conf_dir: str | Path, config_name: str = "config") -> dict:
    """Compose ``conf_dir/<config_name>.yaml`` with no overrides, as a plain dict."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base=None):
        cfg = compose(config_name=config_name)
    return OmegaConf.to_container(cfg, resolve=True)


def write_params(conf_dir: str | Path, params_path: str | Path, config_name: str = "config") -> None:
    """Write the composition of ``conf_dir/<config_name>.yaml`` to ``params_path`` (a committed params file)."""
    header = f"# Generated from conf/{config_name}.yaml by `make params`; edit conf/, not this file.\n"
    Path(params_path).parent.mkdir(parents=True, exist_ok=True)
    Path(params_path).write_text(header + yaml.safe_dump(compose_params(conf_dir, config_name), sort_keys=False))


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    for name, target in PARAMS_FILES.items():
        write_params(root / "conf", root / target, name)
