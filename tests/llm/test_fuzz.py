"""Fuzzing every llm route from its OpenAPI schema (tests/fuzz.py) on the real SmolLM2 server."""

from tests.fuzz import fuzz


def json_body(properties: dict, required: list[str]) -> dict:
    schema = {"type": "object", "properties": properties, "required": required}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


# The Ollama routes read their JSON themselves: their bodies, from Ollama's API reference.
MESSAGE = {
    "type": "object",
    "properties": {"role": {"type": "string"}, "content": {"type": "string"}, "images": {"type": "array"}},
}
COMMON = {
    "model": {"type": "string"},
    "stream": {"type": "boolean"},
    "format": {},
    "options": {"type": "object"},
    "keep_alive": {},
}
OLLAMA_BODIES = {
    "POST /ollama/api/chat": json_body({**COMMON, "messages": {"type": "array", "items": MESSAGE}}, ["model"]),
    "POST /ollama/api/generate": json_body(
        {**COMMON, "prompt": {"type": "string"}, "system": {"type": "string"}, "raw": {"type": "boolean"}}, ["model"]
    ),
    "POST /ollama/api/show": json_body({"model": {"type": "string"}}, ["model"]),
    "POST /ollama/api/embed": json_body({"model": {"type": "string"}, "input": {}, "truncate": {}}, ["model"]),
    "POST /ollama/api/embeddings": json_body({"model": {"type": "string"}, "prompt": {}}, ["model"]),
    "POST /ollama/api/pull": json_body({"model": {"type": "string"}, "stream": {"type": "boolean"}}, ["model"]),
    "POST /ollama/api/push": json_body({"model": {"type": "string"}}, ["model"]),
    "POST /ollama/api/create": json_body({"model": {"type": "string"}, "from": {"type": "string"}}, ["model"]),
    "DELETE /ollama/api/delete": json_body({"model": {"type": "string"}}, ["model"]),
    "POST /ollama/api/copy": json_body({"source": {"type": "string"}, "destination": {"type": "string"}}, []),
}


def sibling_not_configured(route: str, response) -> bool:
    """The routes the llm forwards to asr, tts or embedding answer 503 naming the setting when it is unset."""
    return response.status_code == 503 and "is not configured: set LLM_" in response.text


def test_no_llm_request_gets_a_5xx_or_no_answer(smol):
    with smol.client() as client:
        findings = fuzz(
            smol.app.openapi(),
            lambda request: client.request(**request, timeout=120),
            allow_503=sibling_not_configured,
            request_bodies=OLLAMA_BODIES,
        )
    print(findings.report())
    assert findings.problems == [], "\n".join(findings.problems)
