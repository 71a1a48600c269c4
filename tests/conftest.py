"""Fixtures shared by both halves of the suite. tests/unit: tiny random models only, no real data, no
shipped release set, no cached model (tests/unit/conftest.py enforces it). tests/integration: the real
converted encoder (converted into the cache on first use: ~30 s once), the data in ../shared/data, the
release set in release/ and trained models in the cache (tests/integration/conftest.py). Plain data and
helpers both halves use live in tests/support (`from tests.support.intent import EXAMPLES`)."""

from __future__ import annotations

import os

import pytest

# tests/support holds helpers both halves import (`from tests.support.cli import one_line_error`): their
# asserts explain a failure as the tests' own do only if pytest rewrites them, which it must hear before
# the first import.
pytest.register_assert_rewrite("tests.support")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a test module of tiny tensors: extra threads only add synchronisation."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def gazetteer():
    """The singer/song gazetteer of tests.support.intent.LEXICONS; one per module, as tests add to it."""
    from luodi.text.gazetteer import Gazetteer
    from tests.support.intent import LEXICONS

    return Gazetteer(LEXICONS)


@pytest.fixture
def no_trained_models(monkeypatch, tmp_path):
    """An empty model cache: what a fresh clone has (only the release set)."""
    monkeypatch.setenv("LUODI_MODELS", str(tmp_path / "models"))
    return tmp_path


# ----------------------------------------------------------------------------- tiny int8 release directories
# export_release on tiny random models (trimmed vocabulary, fused, dynamic int8), one per kind, built once
# per session: the runtime's behaviour on real int8 graphs without the real models.

TINY_CHARS = "播放周杰伦的歌明天气怎么样我想听刘德华冰雨"


def build_tiny_release(kind: str, out_dir, **export_options):
    import torch

    from luodi.deploy.release import export_release
    from luodi.modeling import TokenClassifier, TokenClassifierConfig, tiny_encoder_config
    from luodi.runtime.tasks import CharVocab
    from luodi.tasks.intent import IntentConfig, JointIntentSlotModel
    from luodi.tasks.segment import SegmenterConfig, SegmenterModel
    from luodi.text.gazetteer import Gazetteer

    torch.manual_seed(0)
    vocab = CharVocab(["<s>", "<pad>", "</s>", "<unk>", "▁", *TINY_CHARS], "<unk>", "<s>", "</s>", "<pad>")
    enc = tiny_encoder_config(len(vocab), hidden=64)
    lexicons = None
    if kind == "breaker":
        model = TokenClassifier(TokenClassifierConfig(encoder=enc, num_labels=6, dropout=0.0))
    elif kind == "segmenter":
        model = SegmenterModel(
            SegmenterConfig(encoder=enc, bigrams=["周杰", "杰伦"], bigram_dim=8, attn_heads=2, mlp_hidden=16)
        )
    else:
        tags = ["O", "B-singer", "I-singer", "E-singer", "S-singer"]
        config = IntentConfig(encoder=enc, intents=["Chat", "PlayMusic", "Weather"], slot_tags=tags,
                              knowledge=True, knowledge_labels=tags[1:], fusion_heads=2, label_dim=8)  # fmt: skip
        model = JointIntentSlotModel(config)
        lexicons = out_dir.parent / f"{out_dir.name}-lexicons"
        # 杰伦 inside 周杰伦: two label sets on one character, so batches differ in knowledge depth
        Gazetteer({"singer": ["周杰伦", "杰伦", "刘德华"]}).save_dir(lexicons)
    export_release(model.eval(), vocab, out_dir, TINY_CHARS, lexicons=lexicons, **export_options)
    return out_dir


@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory):
    """``tiny_release(kind)`` -> the path of a tiny release directory of that kind."""
    built = {}

    def get(kind: str):
        if kind not in built:
            built[kind] = build_tiny_release(kind, tmp_path_factory.mktemp("tiny-release") / kind)
        return built[kind]

    return get


@pytest.fixture(scope="session")
def build_release():
    """``build_release(kind, out_dir, **export_release options)``: a fresh tiny release directory."""
    return build_tiny_release
