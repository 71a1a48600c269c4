"""The generator in release/: it loads with the matcher's tables, answers, fits the budget, and the
assistant, `luodi chat` and the server's /v1/chat use it without a config."""

import json
import time

import numpy as np
import pytest

from luodi.pipeline import release_dir

RELEASE = release_dir()
GENERATOR = RELEASE / "generator"

pytestmark = pytest.mark.skipif(not (GENERATOR / "model.onnx").is_file(), reason="no release/generator")


@pytest.fixture(scope="module")
def generator():
    from luodi.tasks.generate import Generator

    return Generator.load(GENERATOR, threads=1)


def test_the_release_generator_answers_from_its_kept_pieces(generator):
    model = generator.model
    assert type(model).__name__ == "OnnxReplyModel" and model.table is not None  # the matcher's table
    reply = generator("今天好累啊", strategy="greedy")
    assert isinstance(reply, str) and reply.strip()
    ids = generator.tokenizer("今天好累啊", add_special_tokens=False)["input_ids"]
    _, logits = model.start([ids])
    finite = np.flatnonzero(np.isfinite(logits[0]))
    np.testing.assert_array_equal(finite, np.sort(model.output_ids))  # only the kept pieces can be chosen
    assert len(finite) < len(logits[0]) / 3
    replies = generator(["周末一起去爬山吧", ["在吗", "在的", "今天好累啊"]], strategy="sample", seed=0)
    assert len(replies) == 2 and all(r.strip() for r in replies)


def test_the_release_generator_passed_its_gate_and_the_release_set_fits_the_budget():
    from luodi.commands.assistant import shipped_mb

    card = json.loads((GENERATOR / "card.json").read_text())
    assert card["gate"]["passed"] and not card["forced"]
    assert card["gate"]["agreement"]["release"] >= card["gate"]["min_agreement"]
    assert "FAILED" not in (GENERATOR / "CARD.md").read_text()
    assert shipped_mb(RELEASE) <= 60.0


def test_the_default_assistant_answers_chit_chat_with_the_generator():
    from luodi.pipeline import Assistant
    from luodi.tasks.chat import RerankedGenerator

    assistant = Assistant()
    assert isinstance(assistant.generator, RerankedGenerator) and assistant.generator.candidates == 8
    assert "generator=onnx-" in assistant.describe()
    reply = assistant.generator("今天好累啊")
    assert isinstance(reply, str) and reply.strip()
    # generic replies are penalised with the table shipped beside the generator (luodi.tasks.chat)
    generic = assistant.generator.generic
    assert generic is not None and "是的" in generic.shares and generic.about["posts"] >= 1000
    assert assistant.generator.generic_penalty > 0 and assistant.generator.centroid_penalty > 0


def test_luodi_chat_answers_one_line_with_the_release_generator():
    from typer.testing import CliRunner

    from luodi.cli import app

    result = CliRunner().invoke(app, ["chat"], input="今天好累啊\n")
    assert result.exit_code == 0, result.output
    assert result.output.strip()


def test_serve_without_a_config_answers_v1_chat():
    from fastapi.testclient import TestClient

    from luodi.serve.app import create_app
    from luodi.serve.config import ServeConfig
    from luodi.serve.predictors import default_models, load_predictors

    models = default_models()
    assert models["chat"].dir.endswith("generator")  # the registry's release folder of the chat task
    config = ServeConfig(models={"chat": models["chat"]})
    with TestClient(create_app(lambda: load_predictors(config), config)) as client:
        for _ in range(600):  # the models load in a thread after start-up
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.1)
        response = client.post("/v1/chat", json={"text": "今天好累啊"})
        assert response.status_code == 200, response.text
        assert response.json()["reply"].strip()
    from luodi.serve.predictors import chat_predictor
    from luodi.tasks.generate import Generator

    predict = chat_predictor(Generator.load(GENERATOR, threads=1))  # reranked by the matcher it shares
    assert [r.strip() != "" for r in predict(["今天好累啊", "你吃饭了吗"])] == [True, True]
