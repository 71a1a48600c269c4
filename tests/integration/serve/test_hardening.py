"""`luodi serve` without a config serves every task model shipped in release/ (the rest of the service's
hardening: tests/unit/serve/test_hardening.py)."""

from __future__ import annotations

from luodi.paths import release_dir


def test_serve_without_a_config_serves_every_shipped_release_model(monkeypatch, release_root):
    from typer.testing import CliRunner

    from luodi.cli import app
    from luodi.serve import server

    seen = {}
    monkeypatch.setattr(server, "run", lambda application, cfg: seen.update(models=dict(cfg.models)))
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    shipped = {"segment": "segmenter", "intent": "intent", "match": "matcher", "chat": "generator"}
    expected = {"understand"} | {
        n for n, d in shipped.items() if (release_dir() / d / "model.onnx").is_file()
    }
    assert set(seen["models"]) == expected
    assert "match" in seen["models"]  # the matcher ships: /v1/match works with no config
    assert all(seen["models"][n].dir.endswith(shipped[n]) for n in expected - {"understand"})
