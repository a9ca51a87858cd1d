"""Fuzzing every websearch route from its OpenAPI schema (tests/fuzz.py) on the real PostgreSQL,
Qdrant and embedding service."""

from tests.fuzz import fuzz


def test_no_websearch_request_gets_a_5xx_or_no_answer(websearch):
    findings = fuzz(websearch.app.openapi(), lambda request: websearch.request(**request))
    print(findings.report())
    assert findings.problems == [], "\n".join(findings.problems)
