"""qvlconv: Hugging Face Qwen3-VL checkpoint -> ONNX model folder (see tools/README.md)."""


class ConvertError(Exception):
    """A user-caused problem (bad checkpoint, bad flag); printed as one line, exit 1."""
