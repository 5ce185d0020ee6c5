"""Stage `ingest`: any mix of sources -> a validated, labelled, split manifest and a report.

    dvc repro ingest            # or: python stages/ingest.py ingest.strict=true
"""

import hydra
from omegaconf import DictConfig, OmegaConf

from holotune.data.ingest import IngestOptions, Source, ingest
from holotune.data.validation import LabelRules


@hydra.main(config_path="../conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    c = cfg.ingest
    options = IngestOptions(
        strict=c.strict, validation_split=c.validation_split, test_split=c.test_split, split_by=c.split_by,
        seed=c.seed, class_names=tuple(c.class_names) if c.class_names else None, video_fps=c.video_fps,
        teacher=c.teacher, rules=LabelRules(coordinate_tolerance=c.coordinate_tolerance),
        default_options=OmegaConf.to_container(c.default_data),
    )
    report = ingest([Source(kind=s.kind, path=s.path) for s in c.sources], c.out_dir, options)
    counts = report.counts
    print(f"ingest: {counts['in']} in, {counts['kept']} kept, {counts['quarantined']} quarantined; "
          f"splits {report.splits}; report: {c.out_dir}/ingest_report.json")


if __name__ == "__main__":
    main()
