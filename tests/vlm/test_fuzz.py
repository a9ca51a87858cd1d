"""Fuzzing every vlm route from its OpenAPI schema (tests/fuzz.py): on the tiny Qwen2-VL in-process, and
on a vlm with no engine configured (whose 503 says how to configure one)."""

from fastapi.testclient import TestClient

from tests.fuzz import fuzz
from vlm.app import create_app
from vlm.config import Settings

# The routes read JSON or a form themselves: their body, as the README describes it.
FIELDS = {
    "text": {"type": "string"},
    "image_url": {"type": "string"},
    "image_base64": {"type": "string"},
    "max_tokens": {"type": "integer", "minimum": 1},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "model": {"type": "string"},
}
BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"type": "object", "properties": FIELDS}},
        "multipart/form-data": {
            "schema": {"type": "object", "properties": {**FIELDS, "image": {"type": "string", "format": "binary"}}}
        },
    },
}
BODIES = {"POST /describe_image": BODY, "POST /describe_image_stream": BODY}


def test_no_vlm_request_gets_a_5xx_or_no_answer(transformers_client):
    client = transformers_client
    findings = fuzz(client.app.openapi(), lambda request: client.request(**request), request_bodies=BODIES)
    print(findings.report())
    assert findings.problems == [], "\n".join(findings.problems)


def test_an_unconfigured_vlm_answers_503_with_what_to_set_and_nothing_else_5xx():
    def configure_hint(route, response):
        return response.status_code == 503 and "VLM_ENGINE" in response.text

    with TestClient(create_app(Settings(_env_file=None))) as client:
        findings = fuzz(
            client.app.openapi(),
            lambda request: client.request(**request),
            allow_503=configure_hint,
            request_bodies=BODIES,
        )
    print(findings.report())
    assert findings.problems == [], "\n".join(findings.problems)
