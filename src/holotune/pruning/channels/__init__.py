"""``channels``: structured pruning. Whole channels go with every weight that writes or reads them,
leaving a smaller *dense* model, with the stock input/output signature, that ONNX Runtime runs faster.

:mod:`.graph` finds the channels that must go together (groups), :mod:`.calibrate` collects the
activation statistics and refits the layers that read removed channels, :mod:`.score` ranks the
groups, and :mod:`.plan` picks what goes per site and removes it
(:meth:`holotune.models.tflite_module.TFLiteModule.slice_channels`).
"""
