"""The fuzzer builds its bodies from the server's own OpenAPI document, not from a list of endpoint names:
every endpoint the registry serves has a body shape it knows."""

import json

from fastapi.testclient import TestClient

from bench.fuzz import Gen, request_fields
from luodi.serve.app import create_app
from luodi.tasks.spec import served


def test_every_served_endpoint_gets_a_well_formed_body_from_its_schema():
    openapi = TestClient(create_app({})).get("/openapi.json").json()
    for endpoint in ["understand", *(t.endpoint for t in served())]:
        fields = request_fields(openapi, endpoint)
        assert fields & {"text", "texts", "query"}, (endpoint, fields)
        gen = Gen(seed=1, limit=510, max_items=64)
        well_formed = [body for cat, body in (gen.body(fields) for _ in range(50)) if cat.startswith("text/")]
        assert well_formed and all(set(b) <= fields for b in well_formed), endpoint
        json.dumps(well_formed, ensure_ascii=False)
