"""Data in: ingest any mix of sources into a validated, labelled, split manifest, then TFRecord shards.

Modules: :mod:`~holotune.data.manifest` (the manifest rows), :mod:`~holotune.data.validation`
(per-sample checks with reasons), :mod:`~holotune.data.ingest` (sources, teacher labels, splits,
report), :mod:`~holotune.data.tfrecord` (TFRecord IO in the fine-tuning API's schema),
:mod:`~holotune.data.default` (the embedded default dataset).
"""
