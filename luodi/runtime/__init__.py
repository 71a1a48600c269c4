"""Run exported models: ``OnnxModel(path)(input_ids, attention_mask) -> dict[str, np.ndarray]``."""

from luodi.runtime.ort import OnnxModel

__all__ = ["OnnxModel"]
