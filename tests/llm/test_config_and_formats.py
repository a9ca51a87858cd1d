"""Model tables, stop strings and reasoning filters (no model needed)."""

import json

import pytest
from fastapi.testclient import TestClient

from llm.app import create_app
from llm.config import Settings
from llm.engines.local import StopScanner
from llm.models import ModelRegistry, routes_from
from llm.openai_format import ThinkFilter, message_text
from tests.conftest import wait_for_health


def test_compact_models_setting_maps_names_to_engines_and_upstream_models():
    settings = Settings(
        models="qwen=openai:Qwen/Qwen2.5-7B-Instruct,llama=ollama:llama3.1:8b,smol=local",
        upstream_url="http://vllm:8000/v1",
    )
    routes = {route.name: route for route in routes_from(settings)}
    assert routes["qwen"].engine.value == "openai" and routes["qwen"].engine_model == "Qwen/Qwen2.5-7B-Instruct"
    assert routes["llama"].engine_model == "llama3.1:8b"
    assert routes["smol"].engine.value == "local"
    registry = ModelRegistry(settings)
    assert registry.default == "qwen"
    assert registry.engine_of["qwen"] is not registry.engine_of["llama"]


def test_models_on_one_upstream_share_one_engine():
    table = {"a": {"engine": "openai", "upstream_model": "x"}, "b": {"engine": "openai", "upstream_model": "y"}}
    registry = ModelRegistry(Settings(models=json.dumps(table), upstream_url="http://u/v1", default_model="b"))
    assert registry.engine_of["a"] is registry.engine_of["b"] and registry.default == "b"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"models": "broken"}, "name=engine"),
        ({"models": "a=gpt"}, "engine must be one of"),
        ({"models": "a=openai:m"}, "LLM_UPSTREAM_URL"),
        ({"models": "a=local", "default_model": "b"}, "LLM_DEFAULT_MODEL"),
        ({"models": '{"a": {"engine": "local", "colour": 1}}'}, "unknown keys"),
    ],
)
def test_a_wrong_model_table_fails_at_start_up_with_a_clear_message(settings, named):
    with pytest.raises(ValueError, match=named):
        create_app(Settings(**settings))


def test_a_missing_local_model_makes_health_503_and_chat_503():
    app = create_app(Settings(model_path="/nonexistent/model.gguf"))
    with TestClient(app) as client:
        health = wait_for_health(client, settled=True)
        assert health.status_code == 503
        assert health.json()["status"] == "error" and "/nonexistent" in health.json()["detail"]
        response = client.post("/api/chat", json={"messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 503 and "/nonexistent" in response.json()["error"]["message"]


def test_stop_scanner_holds_back_a_possible_stop_and_cuts_at_it():
    scanner = StopScanner(["END"])
    assert scanner.feed("abc E") == ("abc", False)
    assert scanner.feed("N") == (" ", False)
    assert scanner.feed("D more") == ("", True)


def test_reasoning_stays_out_of_the_answer():
    assert message_text({"choices": [{"message": {"content": "<think>hmm</think>\n\nParis."}}]}) == "Paris."
    think = ThinkFilter()
    assert "".join(think.feed(d) for d in ["<thi", "nk>so", "...</th", "ink> Paris", "."]) == "Paris."
    plain = ThinkFilter()
    assert "".join(plain.feed(d) for d in ["<", "b>Paris</b>"]) == "<b>Paris</b>"


@pytest.mark.parametrize(
    "params",
    [{"response_format": {"type": "json_object"}}, {"tools": [{"type": "function", "function": {"name": "f"}}]}],
)
def test_the_transformers_engine_says_it_cannot_constrain_its_answer(params):
    from llm.config import Engine
    from llm.engines.base import ChatRequest
    from llm.engines.local import LocalEngine
    from llm.models import ModelRoute
    from services.errors import BadRequest

    engine = LocalEngine(ModelRoute("local", Engine.local), Settings())
    with pytest.raises(BadRequest, match="LLM_ENGINE=llamacpp"):
        engine.prepare(ChatRequest("m", [{"role": "user", "content": "hi"}], params), loop=None)  # type: ignore[arg-type]
