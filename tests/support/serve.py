"""Waiting on the service under test (tests/unit/serve and tests/integration/serve)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient


def wait_ready(client: TestClient) -> dict:
    """/readyz once the models have loaded (or failed to): up to a minute."""
    for _ in range(600):
        body = client.get("/readyz").json()
        if body.get("error") != "models are still loading":
            return body
        time.sleep(0.1)
    raise AssertionError("models never loaded")
