"""Fuzzing every asr route from its OpenAPI schema (tests/fuzz.py) on the real Whisper engine."""

from tests.fuzz import fuzz


def test_no_asr_request_gets_a_5xx_or_no_answer(client):
    findings = fuzz(client.app.openapi(), lambda request: client.request(**request))
    print(findings.report())
    assert findings.problems == [], "\n".join(findings.problems)
