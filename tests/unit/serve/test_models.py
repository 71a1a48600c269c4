"""Models behind the service: a model that cannot be loaded gives a clear 503 naming the cause while the
others keep serving, and the assistant kind's config. The same on the shipped release models:
tests/integration/serve/test_models.py."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from luodi.serve.app import create_app
from luodi.serve.config import ConfigError, ModelConfig, ServeConfig, config_from_dict, load_config
from luodi.serve.predictors import ModelLoadError, load_predictors
from tests.support.serve import wait_ready


def test_a_model_that_fails_to_load_is_503_naming_the_cause_and_the_others_serve(tmp_path):
    config = ServeConfig(
        models={
            "understand": ModelConfig(kind="assistant", options={"config": str(tmp_path / "nope.yaml")}),
        }
    )

    def loader():
        return {
            **load_predictors(config, strict=False),
            "intent": lambda texts: [{"intent": "null", "score": 1.0} for _ in texts],
        }

    with pytest.raises(ModelLoadError, match="models.understand: could not load: FileNotFoundError"):
        load_predictors(config)  # strict: the first failure stops (luodi serve uses strict=False)
    with TestClient(create_app(loader, config)) as c:
        ready = wait_ready(c)
        assert ready["ready"] is False and ready["models"]["understand"] == "failed"
        assert ready["models"]["intent"] == "ready" and "nope.yaml does not exist" in ready["error"]
        r = c.post("/v1/understand", json={"text": "明天下雨吗"})
        # a load failure is permanent: no Retry-After (clients would retry forever)
        assert r.status_code == 503 and "retry-after" not in r.headers
        assert "model 'understand' is not available" in r.json()["detail"]
        assert "assistant config" in r.json()["detail"] and "nope.yaml does not exist" in r.json()["detail"]
        # where the server keeps its files is not sent to clients (the server log has the whole message)
        assert str(tmp_path) not in r.text and str(tmp_path) not in c.get("/readyz").text
        assert c.post("/v1/intent", json={"texts": ["你好"]}).json()["results"][0]["intent"] == "null"


def test_assistant_kind_is_for_understand_only_and_its_config_is_relative_to_the_file(tmp_path):
    with pytest.raises(ConfigError, match="models.intent.kind: 'assistant' only serves 'understand'"):
        config_from_dict({"models": {"intent": {"kind": "assistant"}}}, "s.yaml")
    path = tmp_path / "serve.yaml"
    path.write_text("models:\n  understand: {kind: assistant, options: {config: a/assistant.yaml}}\n")
    assert load_config(path).models["understand"].options["config"] == str(tmp_path / "a/assistant.yaml")
