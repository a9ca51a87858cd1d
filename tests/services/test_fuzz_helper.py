"""The fuzzer of tests/fuzz.py finds what it is for: a 500 and a body that is not the JSON it says it is."""

from fastapi import Response
from fastapi.testclient import TestClient

from services.app import create_app
from services.health import Health, Status
from services.settings import ServiceSettings
from tests.fuzz import fuzz


def test_the_fuzzer_reports_a_500_and_a_body_that_is_not_json():
    app = create_app(ServiceSettings(), name="demo", health=lambda: Health(Status.ok))

    @app.get("/ratio")
    async def ratio(a: int, b: int) -> dict[str, float]:
        return {"ratio": a / b}  # b = 0: ZeroDivisionError, a 500

    @app.get("/claims-json")
    async def claims_json(n: int) -> Response:
        return Response("not json" if n % 2 else "{}", media_type="application/json")

    with TestClient(app) as client:
        findings = fuzz(app.openapi(), lambda request: client.request(**request), examples=50)
    assert any(p.startswith("GET /ratio: 500") for p in findings.problems), findings.problems
    assert any("GET /claims-json: 200 says application/json but is not" in p for p in findings.problems)
    assert findings.cases["GET /ratio"] == 50
