"""A word-embedding table read out of another model's int8 ONNX graph, looked up in numpy.

    table = SharedTable.from_onnx("release/matcher/model.onnx")     # the matcher's uint8 word embeddings
    table.lookup(np.array([[5, 6, 7]]))                               # (1, 3, 384) float32, dequantized

Why: the release generator and the release matcher were both initialised from the same e5 pieces, and a
27,641 x 384 table is 10.6 MB even in int8. The generator's graph takes ``inputs_embeds`` instead of
piece ids and its decoder looks the rows up here, in the matcher's table, so the release set holds that
table once (``luodi.runtime.generator_release`` measures what this costs in agreement with the generator's
own table). The table is found by its initializer name (``...word_embeddings.weight_quantized`` with its
``_scale`` and ``_zero_point``, as ONNX Runtime's dynamic quantisation names them). ``fingerprint`` is a
hash of the quantized bytes and the scale: the generator records the one it was gated with and refuses a
table that changed (a retrained matcher moves its embeddings), rather than decode from rows it never saw.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

SUFFIX = "word_embeddings.weight_quantized"


class SharedTable:
    """Rows ``(q - zero_point) * scale`` of a per-tensor quantized table; ids past its end read ``unk_id``."""

    def __init__(self, quantized: np.ndarray, scale: float, zero_point: float, unk_id: int = 3,
                 source: str = "") -> None:  # fmt: skip
        if quantized.ndim != 2:
            raise ValueError(f"an embedding table is 2-D, got shape {quantized.shape}")
        self.quantized, self.scale, self.zero_point = quantized, np.float32(scale), np.float32(zero_point)
        self.unk_id, self.source = unk_id, source

    @classmethod
    def from_onnx(cls, path: str | Path, unk_id: int = 3) -> SharedTable:
        """The one quantized word-embedding table in the ONNX graph at ``path``."""
        import onnx
        from onnx import numpy_helper

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no such ONNX model (the generator reads its input embeddings there)"
            )
        inits = {i.name: i for i in onnx.load(str(path), load_external_data=False).graph.initializer}
        names = [n for n in inits if n.endswith(SUFFIX)]
        if len(names) != 1:
            raise ValueError(f"{path}: expected one int8 word-embedding table (*{SUFFIX}), found {names}")
        base = names[0][: -len("quantized")]
        try:
            scale, zero = (numpy_helper.to_array(inits[base + k]) for k in ("scale", "zero_point"))
        except KeyError as err:
            raise ValueError(f"{path}: {names[0]} has no per-tensor {err.args[0]}") from None
        if scale.size != 1 or zero.size != 1:
            raise ValueError(f"{path}: {names[0]} is not quantized per tensor")
        table = numpy_helper.to_array(inits[names[0]])
        return cls(table, float(scale), float(zero), unk_id, str(path))

    def __len__(self) -> int:
        return len(self.quantized)

    @property
    def dim(self) -> int:
        return self.quantized.shape[1]

    def fingerprint(self) -> str:
        digest = hashlib.sha256(np.ascontiguousarray(self.quantized).tobytes())
        digest.update(np.array([self.scale, self.zero_point], np.float32).tobytes())
        return digest.hexdigest()[:16]

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """float32 rows for ``ids`` (any shape) -> ids.shape + (dim,). An id the table does not hold (a
        special added after it, such as ``<mask>``) reads the ``<unk>`` row."""
        ids = np.asarray(ids, np.int64)
        ids = np.where((ids >= 0) & (ids < len(self.quantized)), ids, self.unk_id)
        return (self.quantized[ids].astype(np.float32) - self.zero_point) * self.scale

    def dequantized(self) -> np.ndarray:
        return self.lookup(np.arange(len(self.quantized)))


def pack_int4(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) float rows -> (n, d / 2) uint8, two 4-bit codes a byte (low nibble first), and one float32
    scale a row: code ``round(x / scale) + 8`` in 1..15, ``scale = max |x| / 7``. For small corrections
    (a row minus a close copy of it), where 4 bits at the row's own scale keep the error tiny."""
    rows = np.asarray(rows, np.float32)
    if rows.ndim != 2 or rows.shape[1] % 2:
        raise ValueError(f"expected (n, even d) rows, got shape {rows.shape}")
    scale = np.abs(rows).max(1) / 7.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    codes = (np.clip(np.round(rows / scale[:, None]), -7, 7) + 8).astype(np.uint8)
    return codes[:, 0::2] | (codes[:, 1::2] << 4), scale


def unpack_int4(packed: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The inverse of ``pack_int4`` (up to its rounding): (n, d) float32."""
    codes = np.empty((packed.shape[0], packed.shape[1] * 2), np.int8)
    codes[:, 0::2] = packed & 0x0F
    codes[:, 1::2] = packed >> 4
    return (codes.astype(np.float32) - 8.0) * np.asarray(scale, np.float32)[:, None]
