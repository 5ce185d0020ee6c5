"""The project's configuration contract: ``params.yaml`` is the plain composition of ``conf/``.

DVC reads ``params.yaml``; Hydra composes ``conf/``. ``dvc exp run -S`` rewrites ``params.yaml``
from ``conf/`` (``hydra.enabled``), so the committed file must equal a fresh composition.
This is tooling (``make params`` and the config test); the ``holotune`` library never imports Hydra.

    python tools/params.py          # rewrite params.yaml from conf/
"""

from __future__ import annotations

from pathlib import Path

import yaml


def compose_params(conf_dir: str | Path) -> dict:
    """Compose ``conf_dir/config.yaml`` with no overrides, as a plain dict."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base=None):
        cfg = compose(config_name="config")
    return OmegaConf.to_container(cfg, resolve=True)


def write_params(conf_dir: str | Path, params_path: str | Path) -> None:
    """Write the composition of ``conf_dir`` to ``params_path`` (the committed ``params.yaml``)."""
    header = "# Generated from conf/ by `make params`; edit conf/, not this file.\n"
    Path(params_path).write_text(header + yaml.safe_dump(compose_params(conf_dir), sort_keys=False))


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    write_params(root / "conf", root / "params.yaml")
