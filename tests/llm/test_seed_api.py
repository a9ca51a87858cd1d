"""The seed API on the real SmolLM2 (local engine)."""

import json

import pytest

from tests.llm.conftest import SMOL, ask

FRANCE = "What is the capital of France?"


def test_health_names_the_default_model_and_is_ok(smol):
    response = smol.client().get("/health")
    assert response.status_code == 200
    assert response.json() == {"model": SMOL, "status": "ok"}


def test_chat_answers_the_capital_of_france_in_the_seed_shape(smol):
    response = smol.client().post("/api/chat", json=ask(FRANCE))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"content", "model", "raw"}
    assert "Paris" in body["content"]
    assert body["model"] == SMOL
    raw = body["raw"]
    assert raw["object"] == "chat.completion"
    assert raw["choices"][0]["message"] == {"role": "assistant", "content": body["content"]}
    assert raw["choices"][0]["finish_reason"] == "stop"
    usage = raw["usage"]
    assert usage["prompt_tokens"] > 5 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_chat_follows_a_system_prompt_and_an_explicit_model(smol):
    payload = {
        "model": SMOL,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": "You are a geography teacher. Answer in one short sentence."},
            {"role": "user", "content": FRANCE},
        ],
    }
    body = smol.client().post("/api/chat", json=payload).json()
    assert "Paris" in body["content"] and body["model"] == SMOL


def test_stream_deltas_join_to_the_answer_and_end_with_done(smol):
    client = smol.client()
    with client.stream("POST", "/api/chat/stream", json=ask(FRANCE)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        events = [json.loads(line) for line in response.iter_lines() if line]
    assert events[-1] == {"event": "done"}
    deltas = events[:-1]
    assert len(deltas) > 1 and all(set(event) == {"delta"} for event in deltas)
    joined = "".join(event["delta"] for event in deltas)
    assert "Paris" in joined
    assert joined == client.post("/api/chat", json=ask(FRANCE)).json()["content"]  # greedy: the same answer


def test_stop_string_cuts_the_answer_before_it(smol):
    body = smol.client().post("/api/chat", json=ask(FRANCE, stop=["Paris"])).json()
    assert "Paris" not in body["content"]
    assert body["content"].startswith("The capital of France")


def test_max_tokens_bounds_the_answer_and_says_length(smol):
    raw = smol.client().post("/api/chat", json=ask("Tell me a long story about a dragon.", max_tokens=3)).json()["raw"]
    assert raw["usage"]["completion_tokens"] == 3
    assert raw["choices"][0]["finish_reason"] == "length"


BAD_BODIES = [
    ({"messages": []}, 422, "messages"),
    ({}, 422, "messages"),
    ({"messages": "hi"}, 422, "messages"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, 422, "role"),
    ({"messages": [{"role": "user"}]}, 422, "content"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": 7}, 422, "temperature"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, 422, "max_tokens"),
    ({"messages": [{"role": "user", "content": "hi"}], "model": "gpt-9"}, 404, SMOL),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, 400, "text"),
]


@pytest.mark.parametrize("path", ["/api/chat", "/api/chat/stream", "/v1/chat/completions"])
@pytest.mark.parametrize(("payload", "status", "named"), BAD_BODIES)
def test_bad_requests_get_a_4xx_that_names_the_problem(smol, path, payload, status, named):
    response = smol.client().post(path, json=payload)
    assert response.status_code == status, response.text
    assert named in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/api/chat", "/api/chat/stream", "/v1/chat/completions"])
def test_a_body_that_is_not_json_gets_400(smol, path):
    response = smol.client().post(path, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


def test_a_prompt_longer_than_the_model_takes_gets_400(smol):
    response = smol.client().post("/api/chat", json=ask("hello " * 5000))
    assert response.status_code == 400
    assert "tokens" in response.json()["error"]["message"]
