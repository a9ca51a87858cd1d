"""The ``openai`` and ``ollama`` engines, proxying to a second lingxi llm that runs the real SmolLM2."""

import asyncio
import json
import time

import httpx
import jsonschema
import openai
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from llm.app import create_app
from llm.config import Settings
from services.app import create_app as create_service_app
from services.health import Health, Status
from tests.llm.conftest import SMOL, ask, serve

FRANCE = "What is the capital of France?"


def test_gateway_proxies_the_seed_api_under_the_served_name(gateway, smol):
    body = gateway.client().post("/api/chat", json=ask(FRANCE)).json()
    assert "Paris" in body["content"]
    assert body["model"] == "smol" and body["raw"]["model"] == "smol"
    direct = smol.client().post("/api/chat", json=ask(FRANCE)).json()
    assert body["content"] == direct["content"]


def test_gateway_streams_deltas_from_the_upstream(gateway):
    with gateway.client().stream("POST", "/api/chat/stream", json=ask(FRANCE)) as response:
        events = [json.loads(line) for line in response.iter_lines() if line]
    assert events[-1] == {"event": "done"}
    assert "Paris" in "".join(event["delta"] for event in events[:-1])


def test_gateway_maps_served_names_to_upstream_models(gateway):
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused")
    assert sorted(model.id for model in client.models.list()) == ["down", "qwen-alias", "smol", "smol-native"]
    completion = client.chat.completions.create(model="qwen-alias", messages=ask(FRANCE)["messages"])
    assert completion.model == "qwen-alias" and "Paris" in completion.choices[0].message.content
    chunks = list(client.chat.completions.create(model="qwen-alias", messages=ask(FRANCE)["messages"], stream=True))
    assert {chunk.model for chunk in chunks} == {"qwen-alias"}
    response = gateway.client().post("/api/chat", json=ask(FRANCE, model="llama-70b"))
    assert response.status_code == 404
    assert "smol, qwen-alias" in response.json()["error"]["message"]


def test_ollama_engine_speaks_ollamas_native_api(gateway):
    body = gateway.client().post("/api/chat", json=ask(FRANCE, model="smol-native")).json()
    assert "Paris" in body["content"] and body["raw"]["usage"]["completion_tokens"] > 0
    with gateway.client().stream("POST", "/api/chat/stream", json=ask(FRANCE, model="smol-native")) as response:
        events = [json.loads(line) for line in response.iter_lines() if line]
    assert events[-1] == {"event": "done"} and "Paris" in "".join(e["delta"] for e in events[:-1])


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
    },
    "required": ["name", "age"],
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 30}},
            "required": ["city"],
        },
    },
}


@pytest.mark.parametrize("model", ["smol", "smol-native"])
def test_structured_outputs_and_tools_pass_through_both_upstream_engines(gateway, model):
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused")
    response_format = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
    messages = [{"role": "user", "content": "Describe a person in JSON."}]
    answer = client.chat.completions.create(model=model, messages=messages, response_format=response_format)
    jsonschema.validate(json.loads(answer.choices[0].message.content), PERSON)
    weather = [{"role": "user", "content": "What is the weather in Paris?"}]
    called = client.chat.completions.create(model=model, messages=weather, tools=[WEATHER], tool_choice="required")
    assert called.choices[0].finish_reason == "tool_calls"
    (call,) = called.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments)["city"]
    chunks = list(
        client.chat.completions.create(
            model=model, messages=weather, tools=[WEATHER], tool_choice="required", stream=True
        )
    )
    streamed = [part for chunk in chunks if chunk.choices for part in chunk.choices[0].delta.tool_calls or []]
    assert streamed[0].function.name == "get_weather" and chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("path", ["/api/chat", "/api/chat/stream", "/v1/chat/completions"])
def test_an_unreachable_upstream_gets_502_naming_it(gateway, dead_url, path):
    response = gateway.client().post(path, json=ask(FRANCE, model="down"))
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert dead_url in message and "unreachable" in message


def test_an_upstream_4xx_passes_through_with_its_message(gateway):
    response = gateway.client().post("/v1/chat/completions", json=ask(FRANCE, n=2))
    assert response.status_code == 400
    assert "n must be 1" in response.json()["error"]["message"]


def test_gateway_health_follows_its_default_upstream(gateway, dead_url):
    assert gateway.client().get("/health").json() == {"model": "smol", "status": "ok"}
    down = create_app(Settings(engine="openai", upstream_url=dead_url, upstream_model="m", upstream_retries=0))
    with TestClient(down) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["model"] == "m" and dead_url in response.json()["detail"]


def slow_upstream(delay_s: float) -> FastAPI:
    """An OpenAI-protocol server that takes ``delay_s`` to answer."""
    app = create_service_app(Settings(), name="slow", health=lambda: Health(Status.ok))

    @app.post("/v1/chat/completions")
    async def chat(body: dict):
        await asyncio.sleep(delay_s)
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": "late"}}]}

    return app


def test_an_upstream_timeout_gets_504():
    with serve(slow_upstream(3.0)) as upstream:
        settings = Settings(
            engine="openai", upstream_url=f"{upstream.url}/v1", upstream_model="m", upstream_timeout_s=0.3
        )
        with TestClient(create_app(settings)) as client:
            response = client.post("/api/chat", json=ask("hi"))
    assert response.status_code == 504
    assert "timed out" in response.json()["error"]["message"]


def test_client_disconnect_cancels_the_upstream_generation(gateway, smol):
    engine = smol.app.state.models.engine_of[SMOL]
    cancelled_before = engine.cancelled
    payload = ask("Count from 1 to 300, one number per line.", max_tokens=200)
    with httpx.stream("POST", f"{gateway.url}/api/chat/stream", json=payload, timeout=60) as response:
        first = json.loads(next(response.iter_lines()))
        assert "delta" in first
    deadline = time.monotonic() + 15
    while engine.cancelled == cancelled_before or engine.pending:
        assert time.monotonic() < deadline, "the upstream kept generating after the client went away"
        time.sleep(0.1)


def test_local_engine_answers_429_when_its_queue_is_full(smol):
    async def burst():
        async with httpx.AsyncClient(base_url=smol.url, timeout=120) as client:
            requests = [client.post("/api/chat", json=ask(f"Say {i}", max_tokens=4)) for i in range(9)]
            return await asyncio.gather(*requests)

    statuses = sorted(response.status_code for response in asyncio.run(burst()))
    assert 429 in statuses and 200 in statuses and set(statuses) == {200, 429}


def broken_stream_upstream() -> FastAPI:
    """An OpenAI-protocol server whose stream breaks off after the first chunk."""
    app = create_service_app(Settings(), name="broken", health=lambda: Health(Status.ok))

    async def events():
        chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "Hel"}}]}
        yield f"data: {json.dumps(chunk)}\n\n".encode()
        await asyncio.sleep(0.05)
        raise RuntimeError("the upstream crashed mid-stream")

    @app.post("/v1/chat/completions")
    async def chat(body: dict):
        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def test_an_upstream_that_breaks_mid_stream_ends_with_one_error_line():
    with serve(broken_stream_upstream()) as upstream:
        settings = Settings(engine="openai", upstream_url=f"{upstream.url}/v1", upstream_model="m")
        with TestClient(create_app(settings)) as client:
            response = client.post("/api/chat/stream", json=ask("hi"))
    assert response.status_code == 200
    events = [json.loads(line) for line in response.text.splitlines() if line]
    assert events[0] == {"delta": "Hel"}
    assert len(events) == 2 and upstream.url in events[1]["error"]
