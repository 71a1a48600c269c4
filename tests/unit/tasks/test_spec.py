"""The task registry: one spec per task, recorded names resolve to it, and the pipeline, the runtime and
the service derive their task lists from it."""

from __future__ import annotations

import dataclasses

import pytest

from luodi.pipeline import AssistantConfig, release_dir
from luodi.runtime.tasks import load_release
from luodi.tasks.spec import REGISTRY, components, for_model, lookup, released, served


def test_every_recorded_name_resolves_to_its_one_task():
    seen = {}
    for spec in REGISTRY.values():
        for alias in spec.aliases():
            assert lookup(alias) is spec
            assert seen.setdefault(alias, spec.name) == spec.name  # no name is claimed twice
    assert lookup("breaker").name == "breaking" and lookup("segmenter").name == "segment"
    assert lookup("chat").name == "generate" and lookup("faq_index").name == "match"


def test_an_unknown_task_name_errors_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown task 'breakr': known tasks are breaking, segment, intent"):
        lookup("breakr")
    with pytest.raises(ValueError, match="unknown release model kind 'reply'"):  # a task, but no release
        load_release("reply", release_dir() / "intent")


def test_the_release_export_finds_the_task_of_a_model_by_its_nearest_class():
    import torch

    from luodi.modeling import TokenClassifier, TokenClassifierConfig, tiny_encoder_config
    from luodi.tasks.intent import IntentConfig, JointIntentSlotModel
    from luodi.tasks.segment import SegmenterConfig, SegmenterModel

    enc = tiny_encoder_config(16, hidden=32)
    breaker = TokenClassifier(TokenClassifierConfig(encoder=enc, num_labels=3))
    segmenter = SegmenterModel(
        SegmenterConfig(encoder=enc, bigrams=[], bigram_dim=8, attn_heads=2, mlp_hidden=8)
    )
    intent = JointIntentSlotModel(IntentConfig(encoder=enc, intents=["a", "b"], slot_tags=["O"]))
    assert [for_model(m).name for m in (breaker, segmenter, intent)] == ["breaking", "segment", "intent"]
    with pytest.raises(TypeError, match="no release export for Linear"):
        for_model(torch.nn.Linear(2, 2))


def test_assistant_components_are_the_registry_s():
    keys = {f.name for f in dataclasses.fields(AssistantConfig)}
    for spec in components():
        assert spec.config_key in keys, spec.name
    from luodi.pipeline import Assistant

    assistant = Assistant(AssistantConfig(threads=1))  # nothing configured: every stage skipped
    assert assistant.missing == [s.component for s in components() if s.reported_missing]
    for spec in components():
        assert getattr(assistant, spec.component) is None


def test_service_names_and_endpoints_derive_from_the_registry(tmp_path):
    from luodi.serve.app import ENDPOINTS, create_app
    from luodi.serve.config import MODEL_NAMES, ServeConfig
    from luodi.serve.predictors import default_models

    assert MODEL_NAMES == ENDPOINTS == ("understand", *(s.endpoint for s in served()))
    paths = {r.path for r in create_app({}, ServeConfig()).routes}
    assert {f"/v1/{s.endpoint}" for s in served()} <= paths
    for spec in released():  # a shipped release folder is served on its task's endpoint, if it has one
        (tmp_path / spec.release).mkdir()
        (tmp_path / spec.release / "model.onnx").write_bytes(b"")
    models = default_models(tmp_path)
    assert set(models) == {"understand"} | {s.endpoint for s in released() if s.endpoint}
    assert models["segment"].dir == str(tmp_path / "segmenter")


def test_a_new_task_endpoint_gets_a_generic_route(monkeypatch):
    """A registered task whose endpoint has no handler of its own is still served: texts in, results out."""
    from fastapi.testclient import TestClient

    from luodi.serve import app as app_module
    from luodi.serve.config import ServeConfig

    monkeypatch.setattr(app_module, "ENDPOINTS", (*app_module.ENDPOINTS, "reverse"))
    app = app_module.create_app({"reverse": lambda texts: [t[::-1] for t in texts]}, ServeConfig())
    with TestClient(app) as client:
        r = client.post("/v1/reverse", json={"texts": ["播放音乐", "天气"]})
        assert r.status_code == 200, r.text
        assert r.json() == {"results": ["乐音放播", "气天"]}
        assert client.get("/readyz").json()["models"]["reverse"] == "ready"


@pytest.mark.parametrize("task", ["segment", "intent"])
def test_distill_refuses_data_a_task_does_not_have(task):
    from luodi.tasks.spec import lookup

    with pytest.raises(ValueError, match=f"--data 'assistant': {task} distils on its default data only"):
        lookup(task).distill([], 0, "assistant")
    with pytest.raises(ValueError, match=f"--session-chars: {task} has no spoken streams"):
        lookup(task).distill([], 0, "default", 1000)


def test_breaking_distils_on_the_data_asked_for(monkeypatch):
    """--data assistant: the student learns the spoken streams its teacher was trained on."""
    import luodi.encoders as encoders
    import luodi.tasks.breaking as breaking
    from luodi.tasks.spec import lookup

    asked, budgets = [], []

    def splits(train_chars=None, data="default", session_seed=0):
        asked.append(data)
        budgets.append(train_chars)
        return ["train"], ["dev"], ["test"]

    monkeypatch.setattr(breaking, "load_splits", splits)
    monkeypatch.setattr(encoders, "load_tokenizer", lambda *a, **k: object())
    monkeypatch.setattr(encoders, "CharAligner", lambda tokenizer: object())
    for data in ("assistant", "default"):
        task = lookup("breaking").distill([], 0, data)
        assert task.train == ["train"] and asked[-1] == data and budgets[-1] is None
    # more spoken streams than the teacher's budget: only the session budget moves
    lookup("breaking").distill([], 0, "assistant", 1_400_000)
    assert budgets[-1] == {**breaking.ASSISTANT_TRAIN_CHARS, "session": 1_400_000}
    with pytest.raises(ValueError, match="only --data assistant has spoken streams"):
        lookup("breaking").distill([], 0, "default", 1_400_000)
