"""Fuzzing every embedding route from its OpenAPI schema (tests/fuzz.py) on the real MiniLM server."""

from tests.fuzz import fuzz


def test_no_embedding_request_gets_a_5xx_or_no_answer(minilm):
    findings = fuzz(minilm.app.openapi(), lambda request: minilm.http.request(**request, timeout=60))
    print(findings.report())
    assert findings.problems == [], "\n".join(findings.problems)
