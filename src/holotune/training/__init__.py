"""Fine-tuning: crop datasets, output decoding, the thin LightningModule and the ``finetune`` stage.

Only :mod:`holotune.training.module` and :mod:`holotune.training.finetune` import Lightning;
:mod:`~holotune.training.data` and :mod:`~holotune.training.outputs` are plain torch, for
evaluation and export to share.
"""
