"""The embedded default, the real Qwen2.5-Coder-0.5B-Instruct, answering as the seed's users expect:
fluent Chinese, tool calls the model decides on (through the ``openai`` and ``ollama`` SDKs), and
JSON answers that end valid before ``max_tokens``."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import ollama
import openai
import pytest

from llm.embedded import QWEN_CODER
from services.model_parts import is_verified
from tests.llm.conftest import QWEN

CJK = re.compile(r"[\u4e00-\u9fff]")
LETTER = re.compile(r"[A-Za-z\u4e00-\u9fff]")
LOOP = re.compile(r"(.{2,24}?)\1{3,}", re.S)  # a phrase said four times in a row

SYSTEM = "system"
SEED_CHATS = [  # the five examples of the seed's LLM document, each with the Chinese characters its answer needs
    ("/api/chat", None, [("user", "你好，给我一句鸡汤")], 4),  # a one-line saying: 天道酬勤 is four
    ("/api/chat", None, [(SYSTEM, "你是一个精简的助手"), ("user", "请用一句话总结人工智能")], 8),
    ("/api/chat", QWEN, [("user", "Python 适合初学者吗？")], 8),
    ("/api/chat/stream", None, [("user", "请用一句话总结量子计算")], 8),
    ("/api/chat/stream", None, [(SYSTEM, "你是一位数学家"), ("user", "解释勾股定理")], 8),
]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def cjk_share(text: str) -> float:
    letters = LETTER.findall(text)
    return len(CJK.findall(text)) / max(1, len(letters))


def loops(text: str) -> list[str]:
    return [match.group(1) for match in LOOP.finditer(text) if re.search(r"\w", match.group(1))]


def seed_answer(client, path: str, model: str | None, turns: list[tuple[str, str]]) -> tuple[str, str]:
    body: dict = {"messages": [{"role": role, "content": text} for role, text in turns]}
    if model:
        body["model"] = model
    if path == "/api/chat":
        answer = client.post(path, json=body).json()
        return answer["content"], answer["raw"]["choices"][0]["finish_reason"]
    lines = [json.loads(line) for line in client.post(path, json=body).text.splitlines()]
    assert lines[-1] == {"event": "done"}
    return "".join(line["delta"] for line in lines[:-1]), "stop"


def test_the_weights_are_the_verified_qwen_file(qwen):
    details = qwen.client().post("/ollama/api/show", json={"model": QWEN}).json()["details"]
    assert details["family"] == "qwen2" and details["quantization_level"] == "Q4_K_M"
    assert is_verified(QWEN_CODER.path(qwen.app.state.settings.model_cache_dir), QWEN_CODER.sha256)


def fault(text: str, finish: str, least: int) -> str | None:
    """What is wrong with a seed answer a user would notice, if anything."""
    if finish != "stop":
        return "cut at max_tokens"
    if len(CJK.findall(text)) < least or cjk_share(text) < 0.5:
        return "not Chinese"
    return f"repeats {loops(text)}" if loops(text) else None


def test_the_seed_prompts_nearly_always_get_fluent_chinese_that_ends_by_itself(qwen):
    """Sampled at the model's own temperature (0.7), as a user who sets none gets it: of 165 answers here 3 were
    bad (a loop of 你好, an answer mostly Python, one cut at max_tokens), so 10 may hold one or two bad, never
    more; an answer of noise, the fault this guards, fails all of them."""
    client = qwen.client()
    bad = []
    for _ in range(2):
        with ThreadPoolExecutor(len(SEED_CHATS)) as pool:  # decoded together, as concurrent users are
            answers = list(pool.map(lambda chat: seed_answer(client, *chat[:3]), SEED_CHATS))
        for (_, _, turns, least), (text, finish) in zip(SEED_CHATS, answers, strict=True):
            problem = fault(text, finish, least)
            if problem:
                bad.append(f"{turns[-1][1]}: {problem}: {text[-300:]!r}")
    assert len(bad) <= 2, bad


def test_the_served_name_and_the_familiar_one_both_answer(qwen):
    client = qwen.client()
    for name in (QWEN, "Qwen2.5-Coder-0.5B-Instruct"):
        body = {"model": name, "messages": [{"role": "user", "content": "1+1=? 只回答数字"}], "max_tokens": 8}
        assert "2" in client.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
    assert QWEN in [model["id"] for model in client.get("/v1/models").json()["data"]]


@pytest.mark.parametrize(
    ("question", "city"),
    [("北京今天天气怎么样？", "北京"), ("What's the weather like in Paris right now?", "Paris")],
)
def test_the_model_calls_a_tool_when_the_question_needs_it(qwen, question, city):
    client = openai.OpenAI(base_url=f"{qwen.url}/v1", api_key="none")
    answer = client.chat.completions.create(
        model=QWEN, messages=[{"role": "user", "content": question}], tools=[WEATHER], temperature=0
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls, choice.message
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and city in json.loads(call.function.arguments)["city"]


def test_a_question_that_needs_no_tool_gets_text_though_tools_are_offered(qwen):
    client = openai.OpenAI(base_url=f"{qwen.url}/v1", api_key="none")
    answer = client.chat.completions.create(
        model=QWEN,
        messages=[{"role": "user", "content": "把这句话翻译成英文：我喜欢编程。"}],
        tools=[WEATHER],
        temperature=0,  # greedy: whether the sampled default calls a tool is chance
    )
    message = answer.choices[0].message
    assert not message.tool_calls and "programming" in (message.content or "").lower(), message


def test_a_streamed_call_arrives_as_tool_call_deltas(qwen):
    client = openai.OpenAI(base_url=f"{qwen.url}/v1", api_key="none")
    stream = client.chat.completions.create(
        model=QWEN,
        messages=[{"role": "user", "content": "上海天气如何？"}],
        tools=[WEATHER],
        stream=True,
        temperature=0,  # greedy: whether the sampled default calls a tool is chance
    )
    chunks = list(stream)
    calls = [call for chunk in chunks if chunk.choices for call in chunk.choices[0].delta.tool_calls or []]
    assert [call.function.name for call in calls] == ["get_weather"]
    assert "上海" in json.loads(calls[0].function.arguments)["city"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert not "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices).strip()


def test_ollama_clients_get_the_call_and_then_the_answer_from_its_result(qwen):
    client = ollama.Client(host=f"{qwen.url}/ollama")
    messages = [{"role": "user", "content": "深圳现在天气怎么样？"}]
    first = client.chat(model=QWEN, messages=messages, tools=[WEATHER], options={"temperature": 0})
    calls = first.message.tool_calls or []
    assert [call.function.name for call in calls] == ["get_weather"] and "深圳" in calls[0].function.arguments["city"]
    messages += [first.message, {"role": "tool", "content": "晴，气温 25 摄氏度", "tool_name": "get_weather"}]
    second = client.chat(model=QWEN, messages=messages, tools=[WEATHER], options={"temperature": 0})
    assert not second.message.tool_calls and "25" in second.message.content, second.message


JOKE = {
    "type": "object",
    "properties": {"setup": {"type": "string"}, "punchline": {"type": "string"}, "tags": {"type": "array"}},
    "required": ["setup", "punchline", "tags"],
}


@pytest.mark.parametrize("max_tokens", [24, 60])
def test_a_json_answer_ends_valid_within_max_tokens(qwen, max_tokens):
    client = openai.OpenAI(base_url=f"{qwen.url}/v1", api_key="none")
    schema_format = {"type": "json_schema", "json_schema": {"name": "joke", "schema": JOKE}}
    for response_format in ({"type": "json_object"}, schema_format):
        answer = client.chat.completions.create(
            model=QWEN,
            messages=[{"role": "user", "content": "Tell me a long joke about cats, as JSON with setup and punchline."}],
            response_format=response_format,  # type: ignore[arg-type]
            max_tokens=max_tokens,
        )
        assert answer.usage is not None and answer.usage.completion_tokens <= max_tokens
        value = json.loads(answer.choices[0].message.content or "")
        assert isinstance(value, dict)
        if response_format is schema_format:
            jsonschema.validate(value, JOKE)


def test_a_forced_call_with_a_small_budget_still_parses(qwen):
    client = openai.OpenAI(base_url=f"{qwen.url}/v1", api_key="none")
    answer = client.chat.completions.create(
        model=QWEN,
        messages=[{"role": "user", "content": "Weather in a city with a very long name, please."}],
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=20,
    )
    message = answer.choices[0].message
    assert message.tool_calls and not message.content, message
    assert isinstance(json.loads(message.tool_calls[0].function.arguments)["city"], str)
