"""holotune: fine-tune MediaPipe Holistic's landmark models and serve them on ONNX Runtime."""

__version__ = "0.1.0"
