"""Stage `ingest`: any mix of sources -> a validated, labelled, split manifest and a report.

    dvc repro ingest            # or: python stages/ingest.py ingest.strict=true
"""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from holotune.config import ConfigError, build
from holotune.data.ingest import IngestError, IngestOptions, ingest
from holotune.media import MediaError


@hydra.main(config_path="../conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    try:
        options = build(IngestOptions, OmegaConf.to_container(cfg.ingest, resolve=True), "ingest")
        report = ingest(options)
    except (ConfigError, IngestError, MediaError) as error:  # MediaError: a fetched file is not the pinned one
        print(f"ingest: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"ingest: {report.summary()}; report: {options.out_dir}/ingest_report.json")


if __name__ == "__main__":
    main()
