"""The release generator's trimming on tiny random models: an output over the kept pieces only, input
embeddings from another model's int8 table, the output matrix rebuilt from that table plus 4-bit
corrections, a cut position table, int8 FFN weights with fp32 activations."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from luodi.runtime.embedding_table import SharedTable, pack_int4, unpack_int4
from luodi.runtime.generate import OnnxReplyModel, export_decoder, tokenizer_dir
from luodi.runtime.generator_release import (
    OUTPUT_HEAD,
    export_slim,
    ffn_down_projections,
    output_pieces,
    weight_only_int8,
)
from luodi.tasks.generate import DecodeConfig, GeneratorConfig, ReplyModel, decode
from tests.support.generate import random_reply_model

VOCAB = 60
MASK = VOCAB - 1
KEEP = [2, *range(10, 40)]  # </s> and the pieces "seen in replies"
CONTEXTS = [[10, 11, 12, 45, 50], [13, 14, 15, 16, 17, 18], [19]]  # 45, 50: pieces the output lacks

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(seed: int = 0) -> ReplyModel:
    """Large random weights (peaked attention), as in test_generate_onnx."""
    return random_reply_model("unilm", seed, VOCAB, MASK, max_reply=8)


def _matcher_onnx(path: Path, table: np.ndarray, shift: float = 0.0) -> Path:
    """A graph holding a uint8 word-embedding table named as ONNX Runtime's quantizer names the matcher's
    (without the <mask> row, as the matcher has none), ``shift`` moving every value like training would."""
    rows = table[:-1] + shift
    scale = float(np.abs(rows).max() / 127)
    quantized = np.clip(np.round(rows / scale) + 128, 0, 255).astype(np.uint8)
    base = "model.embeddings.word_embeddings.weight_"
    inits = [numpy_helper.from_array(quantized, base + "quantized"),
             numpy_helper.from_array(np.array(scale, np.float32), base + "scale"),
             numpy_helper.from_array(np.array(128, np.uint8), base + "zero_point")]  # fmt: skip
    nodes = [helper.make_node("DequantizeLinear", [i.name for i in inits], ["table"]),
             helper.make_node("Gather", ["table", "ids"], ["rows"])]  # fmt: skip
    graph = helper.make_graph(nodes, "matcher", [helper.make_tensor_value_info("ids", TensorProto.INT64, [None])],
                              [helper.make_tensor_value_info("rows", TensorProto.FLOAT, [None, rows.shape[1]])],
                              inits)  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture(scope="module")
def model():
    return _model()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    matcher = root / "matcher"
    matcher.mkdir()
    table = model.embeddings.detach().numpy()
    _matcher_onnx(matcher / "model.onnx", table, shift=0.01)
    info = export_slim(model, root / "generator", KEEP, matcher / "model.onnx", tokenizer_dir=matcher)
    return root, info


def test_pack_int4_keeps_each_value_within_half_a_step_of_its_row():
    rows = np.random.default_rng(0).normal(0, 0.01, (7, 16)).astype(np.float32)
    rows[3] = 0.0  # an all-zero row packs and unpacks to zeros
    packed, scale = pack_int4(rows)
    assert packed.shape == (7, 8) and packed.dtype == np.uint8
    back = unpack_int4(packed, scale)
    assert np.all(np.abs(back - rows) <= scale[:, None] / 2 + 1e-7)
    assert np.all(back[3] == 0) and np.abs(back - rows).max() < np.abs(rows).max() / 14 + 1e-7
    with pytest.raises(ValueError, match="even"):
        pack_int4(rows[:, :3])


def test_shared_table_reads_the_dequantized_rows_and_fingerprints_them(model, tmp_path):
    table = model.embeddings.detach().numpy()
    shared = SharedTable.from_onnx(_matcher_onnx(tmp_path / "m.onnx", table))
    assert len(shared) == VOCAB - 1 and shared.dim == table.shape[1]
    rows = shared.lookup(np.array([[5, 6], [7, MASK]]))
    assert rows.shape == (2, 2, table.shape[1])
    np.testing.assert_allclose(rows[0, 0], table[5], atol=float(shared.scale) / 2 + 1e-6)
    np.testing.assert_array_equal(rows[1, 1], shared.lookup(np.array(3)))  # <mask>: no row, reads <unk>
    moved = SharedTable.from_onnx(_matcher_onnx(tmp_path / "m2.onnx", table, shift=0.05))
    assert moved.fingerprint() != shared.fingerprint()
    with pytest.raises(ValueError, match="one int8 word-embedding table"):
        SharedTable.from_onnx(_plain_onnx(tmp_path / "plain.onnx"))


def _plain_onnx(path: Path) -> Path:
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_trimmed_graph_fed_embeddings_gives_pytorch_logits_of_the_kept_pieces(model, tmp_path):
    """fp32, nothing quantized: the graph with ``inputs_embeds`` and a trimmed output is the same function;
    the decoder spreads the kept logits over the vocabulary and -inf elsewhere."""
    path = export_decoder(model, tmp_path / "fp32.onnx", keep=KEEP, embeds_input=True)
    exact = SharedTable(model.embeddings.detach().numpy(), 1.0, 0.0)  # float rows, "quantized" at scale 1
    onnx_model = OnnxReplyModel(path, model.config, threads=1, table=exact, output_ids=np.array(KEEP))
    torch_state, torch_logits = model.start(CONTEXTS)
    state, logits = onnx_model.start(CONTEXTS)
    others = np.setdiff1d(np.arange(VOCAB), KEEP)
    for tokens in ([20, 21, 22], [23, 23, 24], [25, 26, 27], None):
        assert logits.shape == (3, VOCAB) and np.isneginf(logits[:, others]).all()
        np.testing.assert_allclose(logits[:, KEEP], torch_logits.numpy()[:, KEEP], atol=1e-4, rtol=0)
        if tokens is None:
            break
        torch_logits = model.step(torch_state, torch.tensor(tokens))
        logits = onnx_model.step(state, np.array(tokens))
    with pytest.raises(ValueError, match="first input"):  # an embeddings graph without a table
        OnnxReplyModel(path, model.config, threads=1)


class _Spread:
    """The same decoder with its columns hidden: ``decode`` then works on the logits spread over the
    vocabulary (-inf for the pieces the head lacks), as it did before it learned columns."""

    def __init__(self, inner) -> None:
        self.inner, self.config = inner, inner.config

    def start(self, contexts, use_cache=True):
        return self.inner.start(contexts, use_cache)

    def step(self, state, tokens):
        return self.inner.step(state, tokens)

    def reorder(self, state, index):
        self.inner.reorder(state, index)


def test_decoding_in_the_heads_columns_gives_the_replies_of_the_spread_logits(model, tmp_path):
    """A trimmed head is decoded in its own columns (5.7 k logits a step, not 27.6 k): the same replies, in
    piece ids, as over the spread row, for sampling (same seed: columns keep piece-id order) and greedy,
    with the repetition rules; never a piece the head lacks."""
    path = export_decoder(model, tmp_path / "fp32.onnx", keep=KEEP)
    onnx_model = OnnxReplyModel(path, model.config, threads=1, output_ids=np.array(KEEP))
    for cfg in (DecodeConfig.for_strategy("sample", seed=3, max_length=8, top_p=0.95, temperature=1.5),
                DecodeConfig.for_strategy("sample", seed=4, max_length=8, top_p=1.0, top_k=5),
                DecodeConfig.for_strategy("greedy", max_length=8, repetition_penalty=1.5)):  # fmt: skip
        columns = decode(onnx_model, CONTEXTS * 3, cfg)
        assert columns == decode(_Spread(onnx_model), CONTEXTS * 3, cfg)
        assert {p for row in columns for p in row} <= set(KEEP) - {2}
        assert any(columns)  # not only empty replies: the comparison saw pieces
    shuffled = np.array(KEEP[::-1])  # columns out of piece-id order: decoded over the spread row instead
    reordered = export_decoder(model, tmp_path / "reversed.onnx", keep=shuffled.tolist())
    greedy = DecodeConfig.for_strategy("greedy", max_length=8)
    assert decode(
        OnnxReplyModel(reordered, model.config, threads=1, output_ids=shuffled), CONTEXTS, greedy
    ) == decode(onnx_model, CONTEXTS, greedy)
    no_eos = OnnxReplyModel(path, model.config, threads=1, output_ids=np.array(KEEP[1:] + [40]))
    with pytest.raises(ValueError, match="no </s> column"):
        decode(no_eos, CONTEXTS, DecodeConfig.for_strategy("greedy"))


def test_export_slim_writes_a_small_directory_that_decodes_only_kept_pieces(exported, model):
    root, info = exported
    out = root / "generator"
    assert {p.name for p in out.iterdir()} == {"model.onnx", OUTPUT_HEAD, "luodi.json"}
    assert info["output_pieces"] == len(KEEP) and info["positions"] == 16 + 2 + 8
    meta = json.loads((out / "luodi.json").read_text())
    assert meta["input_embeddings"]["onnx"] == "../matcher/model.onnx" and meta["tokenizer"] == "../matcher"
    assert tokenizer_dir(out).resolve() == (root / "matcher").resolve()
    graph = onnx.load(str(out / "model.onnx"), load_external_data=False).graph
    head = next(i for i in graph.initializer if i.name == "out_weight")
    assert head.data_location == TensorProto.EXTERNAL and not head.raw_data  # not in the file
    positions = [i for i in graph.initializer if "position_embeddings" in i.name and i.dims]
    assert positions and all(i.dims[0] == 26 for i in positions)
    assert not any("word_embeddings" in i.name for i in graph.initializer)  # no input table of its own
    gen = OnnxReplyModel.load(out, threads=1)
    # the output matrix rebuilt at load: the matcher's rows + 4-bit corrections, close to the exact rows
    rebuilt = gen.session.luodi_initializers[0].numpy()
    exact = model.embeddings.detach().numpy()[KEEP].T
    with np.load(out / OUTPUT_HEAD) as saved:
        assert np.abs(rebuilt - exact).max() <= saved["scale"].max() / 2 + 1e-6
    replies = decode(gen, CONTEXTS, DecodeConfig(strategy="greedy", max_length=8))
    assert any(replies) and all(t in KEEP for r in replies for t in r)
    sampled = decode(gen, CONTEXTS, DecodeConfig.for_strategy("sample", max_length=8, seed=1))
    assert all(t in KEEP for r in sampled for t in r)


def test_slim_int8_logits_follow_pytorch(exported, model):
    """int8, the shared table and the rebuilt matrix change the logits a little, not their order."""
    gen = OnnxReplyModel.load(exported[0] / "generator", threads=1)
    _, want = model.start(CONTEXTS)
    _, got = gen.start(CONTEXTS)
    for a, b in zip(got[:, KEEP], want.numpy()[:, KEEP], strict=True):
        assert np.corrcoef(a, b)[0, 1] > 0.98


def test_a_generator_refuses_another_table_and_positions_it_does_not_hold(exported, model, tmp_path):
    root, _ = exported
    gen = OnnxReplyModel.load(root / "generator", threads=1)
    state, _ = gen.start([list(range(10, 26))])  # 16 context pieces + <s> </s>: positions 0-17
    for _ in range(8):
        gen.step(state, np.array([20]))  # positions 18-25: the last the graph holds
    with pytest.raises(ValueError, match="26 positions"):
        gen.step(state, np.array([20]))
    matcher = root / "matcher" / "model.onnx"
    before = matcher.read_bytes()
    try:
        _matcher_onnx(matcher, model.embeddings.detach().numpy(), shift=0.05)  # a retrained matcher
        with pytest.raises(ValueError, match="not the one this generator was released with"):
            OnnxReplyModel.load(root / "generator", threads=1)
    finally:
        matcher.write_bytes(before)


def test_weight_only_int8_stores_int8_and_keeps_the_function(model, tmp_path):
    path = export_decoder(model, tmp_path / "fp32.onnx", keep=KEEP)
    ref = OnnxReplyModel(path, model.config, threads=1, output_ids=np.array(KEEP))
    _, want = ref.start(CONTEXTS)
    nodes = ffn_down_projections(path)
    assert len(nodes) == 2  # one per layer of the tiny model
    assert sorted(weight_only_int8(path, nodes)) == sorted(nodes)
    inits = onnx.load(str(path)).graph.initializer
    assert sum(i.data_type == TensorProto.INT8 and i.name.endswith("_w8") for i in inits) == 2
    _, got = OnnxReplyModel(path, model.config, threads=1, output_ids=np.array(KEEP)).start(CONTEXTS)
    assert not np.array_equal(got[:, KEEP], want[:, KEEP])  # something changed ...
    np.testing.assert_allclose(got[:, KEEP], want[:, KEEP], atol=0.05 * np.abs(want[:, KEEP]).max())


class _Pieces:
    """A tokenizer that splits on spaces and maps each word to an integer id."""

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[int(w) for w in t.split()] for t in texts]}


def test_output_pieces_counts_reply_pieces_and_keeps_the_end_of_reply():
    cfg = GeneratorConfig(bos_id=0, pad_id=1, eos_id=2, mask_id=MASK)
    replies = ["5 6 6", "6 7 0", f"8 {MASK}"]
    assert output_pieces(_Pieces(), replies, cfg) == [2, 5, 6, 7, 8]  # <s> and <mask> never chosen
    assert output_pieces(_Pieces(), replies, cfg, min_count=2) == [2, 6]


def test_compact_json_is_the_same_value_in_fewer_bytes(tmp_path):
    from luodi.deploy.matcher import compact_json

    value = {"model": {"vocab": [["<s>", 0.0], ["你", -3.4635426998138428]]}, "added": [{"id": 1}]}
    source = tmp_path / "a.json"
    source.write_text(json.dumps(value, ensure_ascii=False, indent=2))
    target = compact_json(source, tmp_path / "b.json")
    assert json.loads(target.read_text()) == value
    assert target.stat().st_size < source.stat().st_size / 1.5
