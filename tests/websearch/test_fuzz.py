"""Fuzzing every websearch route from its OpenAPI schema (tests/fuzz.py) on the real PostgreSQL,
Qdrant and embedding service."""

from tests.fuzz import fuzz

WEB_ROUTES = {"GET /search/web", "POST /openwebui/search"}


def no_backend(route, response) -> bool:
    """The session's websearch has no web search backend: its web routes answer the documented 503."""
    return route in WEB_ROUTES and "WEBSEARCH_SEARXNG_URL" in response.json()["error"]["message"]


def test_no_websearch_request_gets_a_5xx_or_no_answer(websearch):
    findings = fuzz(websearch.app.openapi(), lambda request: websearch.request(**request), allow_503=no_backend)
    print(findings.report())
    assert findings.problems == [], "\n".join(findings.problems)
