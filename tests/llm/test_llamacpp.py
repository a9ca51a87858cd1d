"""The llamacpp engine (the embedded default) on the real SmolLM2 GGUF: JSON answers, tool calls,
streaming, cancel and concurrency, through the seed, OpenAI and Ollama APIs and their SDKs."""

import asyncio
import json
import re
import time
from pathlib import Path

import httpx
import jsonschema
import ollama
import openai
import pytest
from openai.types.chat import ChatCompletion

from llm.engines.base import ChatRequest
from llm.openai_format import delta_text
from tests.llm.conftest import SMOL, ask

ROOT = Path(__file__).resolve().parents[2]
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "pet": {"enum": ["cat", "dog", "none"]},
    },
    "required": ["name", "age", "pet"],
    "additionalProperties": False,
}
PERSON_FORMAT = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 30}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The time in a time zone",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "maxLength": 30}},
            "required": ["zone"],
        },
    },
}
DESCRIBE = [{"role": "user", "content": "Describe a person in JSON."}]
CAPITAL = 'What is the capital of France? Answer in JSON with the key "capital".'
PARIS_WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


def sdk(smol) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{smol.url}/v1", api_key="unused")


def valid_call(call, tools=(WEATHER, TIME)) -> dict:
    """The call's arguments, after checking them against the called tool's parameters schema."""
    parameters = {tool["function"]["name"]: tool["function"]["parameters"] for tool in tools}
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, parameters[call.function.name])
    return arguments


# --- structured outputs ---------------------------------------------------------------------------
def test_json_object_mode_answers_a_json_object(smol):
    completion = sdk(smol).chat.completions.create(
        model=SMOL, messages=[{"role": "user", "content": CAPITAL}], response_format={"type": "json_object"}
    )
    assert completion.choices[0].finish_reason == "stop"
    assert "Paris" in json.loads(completion.choices[0].message.content)["capital"]


def test_a_strict_json_schema_answer_validates_plain_and_streamed(smol):
    client = sdk(smol)
    completion = client.chat.completions.create(model=SMOL, messages=DESCRIBE, response_format=PERSON_FORMAT)
    assert completion.choices[0].finish_reason == "stop"
    answer = json.loads(completion.choices[0].message.content)
    jsonschema.validate(answer, PERSON)
    chunks = list(
        client.chat.completions.create(model=SMOL, messages=DESCRIBE, response_format=PERSON_FORMAT, stream=True)
    )
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert len([chunk for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]) > 3  # really streamed
    assert json.loads(streamed) == answer  # greedy: the same answer either way


def test_the_raw_structured_answer_is_an_openai_chat_completion(smol):
    body = (
        smol.client().post("/v1/chat/completions", json={"messages": DESCRIBE, "response_format": PERSON_FORMAT}).json()
    )
    completion = ChatCompletion.model_validate(body)
    jsonschema.validate(json.loads(completion.choices[0].message.content), PERSON)


def test_a_chinese_prompt_gets_a_schema_valid_answer(smol):
    schema = {
        "type": "object",
        "properties": {"城市": {"type": "string", "maxLength": 10}, "国家": {"type": "string", "maxLength": 10}},
        "required": ["城市", "国家"],
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}}
    completion = sdk(smol).chat.completions.create(
        model=SMOL,
        messages=[{"role": "user", "content": "法国的首都是哪个城市？用 JSON 回答。"}],
        response_format=response_format,
    )
    jsonschema.validate(json.loads(completion.choices[0].message.content), schema)


def test_ollama_format_json_and_schema_on_chat_and_generate(smol):
    client = ollama.Client(host=f"{smol.url}/ollama")
    answer = client.chat(model=SMOL, messages=[{"role": "user", "content": CAPITAL}], format="json")
    assert answer.done_reason == "stop" and isinstance(json.loads(answer.message.content), dict)
    answer = client.chat(model=SMOL, messages=DESCRIBE, format=PERSON)
    jsonschema.validate(json.loads(answer.message.content), PERSON)
    parts = list(client.chat(model=SMOL, messages=DESCRIBE, format=PERSON, stream=True))
    assert parts[-1].done and json.loads("".join(part.message.content for part in parts)) == json.loads(
        answer.message.content
    )
    generated = client.generate(model=SMOL, prompt="Describe a person in JSON.", format=PERSON)
    jsonschema.validate(json.loads(generated.response), PERSON)
    streamed = "".join(
        part.response for part in client.generate(model=SMOL, prompt="Describe a dog.", format=PERSON, stream=True)
    )
    jsonschema.validate(json.loads(streamed), PERSON)


def test_the_seed_api_takes_a_format_plain_and_streamed(smol):
    client = smol.client()
    body = client.post("/api/chat", json=ask("Describe a person in JSON.", format=PERSON)).json()
    jsonschema.validate(json.loads(body["content"]), PERSON)
    assert json.loads(client.post("/api/chat", json=ask(CAPITAL, format="json")).json()["content"])
    with client.stream("POST", "/api/chat/stream", json=ask("Describe a person in JSON.", format=PERSON)) as response:
        events = [json.loads(line) for line in response.iter_lines() if line]
    assert events[-1] == {"event": "done"}
    assert json.loads("".join(event["delta"] for event in events[:-1])) == json.loads(body["content"])


UNIQUE = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
BAD_FORMATS = [
    (UNIQUE, "uniqueItems"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]}, "'b'"),
    ({"type": "integer", "minimum": 5, "maximum": 1}, "minimum and maximum"),
    ({"type": "stringg"}, "type must be one of"),
]


@pytest.mark.parametrize(("schema", "named"), BAD_FORMATS)
def test_a_bad_schema_is_a_400_naming_the_problem_in_every_api(smol, schema, named):
    client = smol.client()
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    for path, payload in [
        ("/v1/chat/completions", {"messages": DESCRIBE, "response_format": response_format}),
        ("/v1/chat/completions", {"messages": DESCRIBE, "response_format": response_format, "stream": True}),
        ("/api/chat", {"messages": DESCRIBE, "format": schema}),
        ("/api/chat/stream", {"messages": DESCRIBE, "format": schema}),
    ]:
        response = client.post(path, json=payload)
        assert response.status_code == 400, (path, response.text)
        assert named in response.json()["error"]["message"], path
    for path, payload in [
        ("/ollama/api/chat", {"model": SMOL, "messages": DESCRIBE, "format": schema}),
        ("/ollama/api/generate", {"model": SMOL, "prompt": "Describe a person.", "format": schema}),
    ]:
        response = client.post(path, json=payload)
        assert response.status_code == 400 and named in response.json()["error"], (path, response.text)


def test_a_malformed_format_or_response_format_is_a_400(smol):
    client = smol.client()
    response = client.post("/v1/chat/completions", json={"messages": DESCRIBE, "response_format": {"type": "xml"}})
    assert response.status_code == 400 and "response_format.type" in response.json()["error"]["message"]
    response = client.post("/api/chat", json={"messages": DESCRIBE, "format": "yaml"})
    assert response.status_code == 400 and "format must be" in response.json()["error"]["message"]
    response = client.post("/ollama/api/chat", json={"model": SMOL, "messages": DESCRIBE, "format": 7, "stream": False})
    assert response.status_code == 400 and "format must be" in response.json()["error"]


# --- tool calls -----------------------------------------------------------------------------------
def test_tool_choice_required_returns_a_call_with_valid_arguments(smol):
    completion = sdk(smol).chat.completions.create(
        model=SMOL, messages=PARIS_WEATHER, tools=[WEATHER, TIME], tool_choice="required"
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_") and call.function.name == "get_weather"
    assert "Paris" in valid_call(call)["city"]


def test_a_named_tool_choice_calls_that_tool(smol):
    completion = sdk(smol).chat.completions.create(
        model=SMOL,
        messages=[{"role": "user", "content": "Tokyo"}],
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    (call,) = completion.choices[0].message.tool_calls
    assert call.function.name == "get_time"
    valid_call(call)


def test_a_streamed_tool_call_arrives_as_delta_tool_calls(smol):
    stream = sdk(smol).chat.completions.create(
        model=SMOL, messages=PARIS_WEATHER, tools=[WEATHER], tool_choice="required", stream=True
    )
    chunks = list(stream)
    deltas = [call for chunk in chunks if chunk.choices for call in chunk.choices[0].delta.tool_calls or []]
    assert deltas and deltas[0].index == 0 and deltas[0].id.startswith("call_")
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    arguments = "".join(delta.function.arguments or "" for delta in deltas)
    jsonschema.validate(json.loads(arguments), WEATHER["function"]["parameters"])


def test_tool_choice_auto_answers_a_valid_call_or_plain_text(smol):
    for messages in (PARIS_WEATHER, [{"role": "user", "content": "Say hello."}]):
        message = sdk(smol).chat.completions.create(model=SMOL, messages=messages, tools=[WEATHER]).choices[0].message
        if message.tool_calls:
            valid_call(message.tool_calls[0])
        else:
            assert message.content and not message.content.lstrip().startswith("{")


def test_tool_choice_none_answers_in_text(smol):
    completion = sdk(smol).chat.completions.create(
        model=SMOL, messages=PARIS_WEATHER, tools=[WEATHER], tool_choice="none"
    )
    assert completion.choices[0].message.tool_calls is None and completion.choices[0].message.content


def test_a_follow_up_turn_reads_the_tool_result(smol):
    messages = [
        {"role": "user", "content": "What is the temperature in Paris? Answer with the number."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"celsius": 23}'},
    ]
    client = sdk(smol)
    answer = client.chat.completions.create(model=SMOL, messages=messages, tools=[WEATHER], tool_choice="none")
    assert "23" in answer.choices[0].message.content
    again = client.chat.completions.create(model=SMOL, messages=messages, tools=[WEATHER])  # auto: text or a new call
    assert again.choices[0].finish_reason in ("stop", "tool_calls", "length")


def test_ollama_tool_calls_come_as_message_tool_calls_plain_and_streamed(smol):
    # Ollama's API has no tool_choice (the model decides, and SmolLM2-135M answers in text);
    # lingxi takes OpenAI's tool_choice in an Ollama body, so the call is certain here
    body = {"model": SMOL, "messages": PARIS_WEATHER, "tools": [WEATHER], "tool_choice": "required"}
    answer = ollama.ChatResponse.model_validate(
        httpx.post(f"{smol.url}/ollama/api/chat", json={**body, "stream": False}, timeout=60).json()
    )
    (call,) = answer.message.tool_calls
    assert call.function.name == "get_weather" and answer.done
    jsonschema.validate(dict(call.function.arguments), WEATHER["function"]["parameters"])
    with httpx.stream("POST", f"{smol.url}/ollama/api/chat", json=body, timeout=60) as response:
        parts = [ollama.ChatResponse.model_validate_json(line) for line in response.iter_lines() if line]
    streamed = [call for part in parts for call in part.message.tool_calls or []]
    assert [call.function.name for call in streamed] == ["get_weather"] and parts[-1].done
    client = ollama.Client(host=f"{smol.url}/ollama")
    follow_up = [*PARIS_WEATHER, answer.message, {"role": "tool", "content": "23 degrees", "tool_name": "get_weather"}]
    assert client.chat(model=SMOL, messages=follow_up, tools=[WEATHER]).done
    auto = client.chat(model=SMOL, messages=PARIS_WEATHER, tools=[WEATHER])  # the model's choice: a call or text
    assert auto.message.tool_calls or auto.message.content


def test_bad_tools_are_a_400_in_each_api(smol):
    client = smol.client()
    choice = {"type": "function", "function": {"name": "nope"}}
    response = client.post(
        "/v1/chat/completions", json={"messages": PARIS_WEATHER, "tools": [WEATHER], "tool_choice": choice}
    )
    assert response.status_code == 400 and "'nope'" in response.json()["error"]["message"]
    bad = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "minProperties": 1}}}
    response = client.post(
        "/v1/chat/completions", json={"messages": PARIS_WEATHER, "tools": [bad], "tool_choice": "required"}
    )
    assert response.status_code == 400 and "minProperties" in response.json()["error"]["message"]
    response = client.post(
        "/ollama/api/chat", json={"model": SMOL, "messages": PARIS_WEATHER, "tools": [{"function": {}}]}
    )
    assert response.status_code == 400 and "tools[0]" in response.json()["error"]


# --- sampling, cancel, concurrency ----------------------------------------------------------------
def test_a_seed_repeats_a_sampled_answer(smol):
    client = smol.client()
    story = {
        "messages": [{"role": "user", "content": "Tell me a story."}],
        "temperature": 1.2,
        "top_p": 0.95,
        "max_tokens": 24,
    }
    first, second, other = (
        client.post("/v1/chat/completions", json={**story, "seed": seed}).json()["choices"][0]["message"]["content"]
        for seed in (7, 7, 8)
    )
    assert first == second and first != other


def test_a_client_that_goes_away_frees_its_sequence(smol):
    engine = smol.app.state.models.engine_of[SMOL]
    cancelled = engine.cancelled
    payload = {"messages": [{"role": "user", "content": "Count from 1 to 300."}], "stream": True}
    with httpx.stream("POST", f"{smol.url}/v1/chat/completions", json=payload, timeout=60) as response:
        assert next(response.iter_lines()).startswith("data:")
    deadline = time.monotonic() + 15
    while engine.cancelled == cancelled or engine.pending:
        assert time.monotonic() < deadline, "the engine kept generating after the client went away"
        time.sleep(0.05)


def test_eight_requests_at_once_all_finish_faster_than_one_after_another(smol):
    payload = {"messages": [{"role": "user", "content": "Count from 1 to 100."}], "max_tokens": 32}

    scheduler = smol.app.state.models.engine_of[SMOL].scheduler

    async def run(concurrent: int) -> tuple[float, list[dict]]:
        async with httpx.AsyncClient(base_url=smol.url, timeout=120) as client:
            started = time.perf_counter()
            if concurrent == 1:
                bodies = [(await client.post("/v1/chat/completions", json=payload)).json() for _ in range(2)]
            else:
                responses = await asyncio.gather(*(client.post("/v1/chat/completions", json=payload) for _ in range(8)))
                bodies = [response.json() for response in responses]
            return time.perf_counter() - started, bodies

    before, sequential = asyncio.run(run(1))
    steps = scheduler.steps
    at_once, concurrent = asyncio.run(run(8))
    assert scheduler.steps - steps <= 2 * 33  # the 8 shared their passes over the model: 32 tokens, not 8 x 32
    after, sequential_after = asyncio.run(run(1))  # before and after, so background load hits both alike
    assert all(body["usage"]["completion_tokens"] == 32 for body in sequential + concurrent + sequential_after)
    sequential_rate, concurrent_rate = 4 * 32 / (before + after), 8 * 32 / at_once
    assert concurrent_rate > sequential_rate, (sequential_rate, concurrent_rate)


def test_a_cached_prompt_is_not_read_again_by_the_next_turn(smol):
    """``cache_prompt`` (the realtime voice's turns): a conversation's next turn decodes only the tokens
    its prompt adds; a request without it decodes its whole prompt, as on an empty cache."""
    engine = smol.app.state.models.engine_of[SMOL]
    route, _ = smol.app.state.models.resolve(SMOL)
    first = [
        {"role": "system", "content": "You are a helpful assistant. Answer in one short sentence."},
        {"role": "user", "content": "What is the capital of France?"},
    ]

    async def answer(messages: list[dict], cache: bool) -> tuple[str, int]:
        """The answer, and how many prompt tokens the model decoded for it."""
        before = engine.scheduler.prompt_tokens
        request = ChatRequest(route.engine_model, messages, {"max_tokens": 12}, cache_prompt=cache)
        chunks = await engine.open_stream(request)
        text = "".join([delta_text(chunk) async for chunk in chunks])
        return text, engine.scheduler.prompt_tokens - before

    def tokens(messages: list[dict]) -> int:
        return len(engine.model.tokenize(engine.prompt(messages, None), add_special=True))

    said, _ = asyncio.run(answer(first, True))
    second = [*first, {"role": "assistant", "content": said}, {"role": "user", "content": "And of Germany?"}]
    again, read = asyncio.run(answer(second, True))
    assert again.strip()
    assert read == tokens(second) - tokens(first), (read, tokens(second), tokens(first))
    _, read = asyncio.run(answer(second, False))
    assert read == tokens(second)


# --- the README's examples, as written ------------------------------------------------------------
def readme_body(marker: str) -> dict:
    """The JSON body of the README's curl example that contains ``marker``."""
    text = (ROOT / "README.md").read_text()
    bodies = [json.loads(body) for body in re.findall(r"-d '(\{.*?\})'", text, flags=re.DOTALL) if marker in body]
    assert bodies, f"the README has no curl example with {marker}"
    return bodies[0]


def test_the_readme_structured_output_example_works(qwen):
    body = readme_body('"json_schema"')
    completion = qwen.client().post("/v1/chat/completions", json=body).json()
    schema = body["response_format"]["json_schema"]["schema"]
    jsonschema.validate(json.loads(completion["choices"][0]["message"]["content"]), schema)


def test_the_readme_tool_call_example_works(qwen):
    body = readme_body('"tools"')  # tool_choice auto: the default model decides to call
    completion = ChatCompletion.model_validate(qwen.client().post("/v1/chat/completions", json=body).json())
    (call,) = completion.choices[0].message.tool_calls
    valid_call(call, tools=body["tools"])
    assert "北京" in json.loads(call.function.arguments)["city"]
