"""Function calls on ``WS /v1/realtime``: a round trip on the embedded SmolLM2 (its call comes whole),
then calls as an OpenAI-protocol upstream streams them: the arguments go out piece by piece as they
arrive, the items in OpenAI's order, and ``usage`` from the upstream's counts. The upstream is a fake
speaking OpenAI's chat streaming wire format (``delta.tool_calls`` pieces, the ``include_usage``
chunk); the client is the openai SDK, every event checked by its types. Last, how an answer from the
web is sent in a session: its ``[n]`` taken out, the titles of its sources closing it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from llm.app import create_app
from llm.config import Settings
from llm.openai_format import delta_text
from llm.realtime.web import from_the_web
from llm.web_answer import Found, Source
from services.app import create_app as create_service_app
from services.health import Health, Status
from tests.llm.conftest import NO_SIBLINGS, Running, serve
from tests.llm.realtime_client import client, types, until


def said(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


TEXT_ONLY = {"type": "realtime", "output_modalities": ["text"], "audio": {"input": {"turn_detection": None}}}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
PIECES = ['{"', "city", '":"', "Paris", ", Fr", "ance", '"}']  # as OpenAI streams a call's arguments
INTRO = ["Let me ", "look that up."]
ANSWER = ["It is sunny ", "in Paris, ", "25 C."]
CACHED = {"cached_tokens": 64}
COUNTS = {"prompt_tokens": 81, "completion_tokens": 17, "total_tokens": 98, "prompt_tokens_details": CACHED}


def chunk(delta: dict, finish: str | None = None) -> dict:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
            "choices": [choice], "usage": None}  # fmt: skip


def upstream_events(body: dict) -> list[dict]:
    """OpenAI's chunks: after a tool result, an answer; else a few words, then the call in pieces."""
    if body["messages"][-1]["role"] == "tool":
        events = [chunk({"role": "assistant", "content": ""})] + [chunk({"content": piece}) for piece in ANSWER]
        finish = "stop"
    else:
        first = {"index": 0, "id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
        events = [chunk({"role": "assistant", "content": ""})] + [chunk({"content": piece}) for piece in INTRO]
        events.append(chunk({"tool_calls": [first]}))
        events += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}) for piece in PIECES]
        finish = "tool_calls"
    events.append(chunk({}, finish))
    if (body.get("stream_options") or {}).get("include_usage"):  # OpenAI sends the counts only when asked
        events.append({**chunk({}), "choices": [], "usage": COUNTS})
    return events


def openai_upstream(bodies: list[dict]) -> FastAPI:
    app = create_service_app(Settings(), name="upstream", health=lambda: Health(Status.ok))

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "owned_by": "openai"}]}

    @app.post("/v1/chat/completions")
    async def chat(body: dict) -> StreamingResponse:
        bodies.append(body)

        async def stream() -> AsyncIterator[bytes]:
            for event in upstream_events(body):
                yield f"data: {json.dumps(event)}\n\n".encode()
                await asyncio.sleep(0.01)
            yield b"data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app


@pytest.fixture(scope="module")
def relayed() -> Iterator[tuple[Running, list[dict]]]:
    bodies: list[dict] = []
    with serve(openai_upstream(bodies)) as upstream:
        settings = Settings(engine="openai", upstream_url=f"{upstream.url}/v1", upstream_model="gpt-4o-mini",
                            **NO_SIBLINGS)  # fmt: skip
        with serve(create_app(settings)) as running:
            yield running, bodies


async def test_a_streamed_call_goes_out_piece_by_piece_after_the_message_before_it(relayed) -> None:
    running, bodies = relayed
    async with client(running.url).realtime.connect(model="gpt-realtime") as connection:
        await until(connection, "session.created")
        await connection.session.update(session={**TEXT_ONLY, "tools": [WEATHER]})
        await until(connection, "session.updated")
        await connection.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]}
        )
        await until(connection, "conversation.item.done")
        await connection.response.create()
        events = await until(connection, "response.done")

        assert bodies[-1]["tools"][0]["function"]["name"] == "get_weather"
        kinds = types(events)
        call_events = [k for k in kinds[kinds.index("response.output_text.done") :] if k != "response.output_text.done"]
        assert call_events == [
            "response.content_part.done",
            "response.output_item.done",  # the message ends before the call begins
            "conversation.item.done",
            "response.output_item.added",
            "conversation.item.added",
            *["response.function_call_arguments.delta"] * len(PIECES),
            "response.function_call_arguments.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ]
        deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
        assert [e["delta"] for e in deltas] == PIECES
        added = [e for e in events if e["type"] == "response.output_item.added"][-1]
        assert added["output_index"] == 1 and added["item"]["name"] == "get_weather"
        assert {e["output_index"] for e in deltas} == {1} and {e["call_id"] for e in deltas} == {"call_w1"}
        done = events[kinds.index("response.function_call_arguments.done")]
        assert done["arguments"] == "".join(PIECES) and json.loads(done["arguments"]) == {"city": "Paris, France"}
        response = events[-1]["response"]
        assert [item["type"] for item in response["output"]] == ["message", "function_call"]
        assert response["output"][0]["content"][0]["text"] == "".join(INTRO)
        assert response["output"][1]["arguments"] == done["arguments"]
        assert response["usage"] == {
            "total_tokens": 98,
            "input_tokens": 81,
            "output_tokens": 17,
            "input_token_details": {
                "text_tokens": 81,
                "audio_tokens": 0,
                "image_tokens": 0,
                "cached_tokens": 64,
                "cached_tokens_details": {"text_tokens": 64},
            },
            "output_token_details": {"text_tokens": 17, "audio_tokens": 0},
        }

        result = {"type": "function_call_output", "call_id": "call_w1", "output": '{"weather": "sunny, 25 C"}'}
        await connection.conversation.item.create(item=result)
        await until(connection, "conversation.item.done")
        await connection.response.create()
        answer = (await until(connection, "response.done"))[-1]["response"]
    sent = bodies[-1]["messages"]
    assert sent[-2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris, France"}'}
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_w1", "content": '{"weather": "sunny, 25 C"}'}
    assert answer["output"][0]["content"][0]["text"] == "".join(ANSWER)


async def test_a_function_call_round_trip(smol: Running) -> None:
    async with client(smol.url).realtime.connect(model="gpt-realtime") as connection:
        await until(connection, "session.created")
        await connection.session.update(session={**TEXT_ONLY, "tools": [WEATHER], "tool_choice": "required"})
        session = (await until(connection, "session.updated"))[-1]["session"]
        assert session["tools"][0]["name"] == "get_weather" and session["tool_choice"] == "required"
        await connection.conversation.item.create(item=said("What is the weather in Paris?"))
        await connection.response.create()
        events = await until(connection, "response.done")
        kinds = types(events)
        assert "response.output_text.delta" not in kinds
        added = events[kinds.index("response.output_item.added")]["item"]
        assert added["type"] == "function_call" and added["status"] == "in_progress"
        delta = events[kinds.index("response.function_call_arguments.delta")]  # the embedded engine's call is whole
        done = events[kinds.index("response.function_call_arguments.done")]
        assert done["name"] == "get_weather" and done["call_id"] == added["call_id"] == delta["call_id"]
        assert delta["delta"] == done["arguments"] and isinstance(json.loads(done["arguments"])["city"], str)
        call = events[-1]["response"]["output"][0]
        assert call["type"] == "function_call" and call["arguments"] == done["arguments"]

        result = {"type": "function_call_output", "call_id": call["call_id"], "output": '{"weather": "sunny, 25 C"}'}
        await connection.conversation.item.create(item=result)
        await until(connection, "conversation.item.done")
        await connection.session.update(session={"tool_choice": "auto"})
        await until(connection, "session.updated")
        await connection.response.create()
        answer = (await until(connection, "response.done"))[-1]["response"]
        assert answer["status"] == "completed" and answer["output"][0]["type"] == "message"
        assert answer["output"][0]["content"][0]["text"].strip()


def answer_chunks(*parts: str) -> list[dict]:
    return [chunk({"content": part}) for part in parts] + [chunk({}, "stop")]


async def spoken_from_the_web(parts: list[dict], found: Found) -> str:
    async def stream() -> AsyncIterator[dict]:
        for part in parts:
            yield part

    return "".join([delta_text(c) async for c in from_the_web(stream(), found)])


FOUND = Found(
    "What causes tides?",
    [Source(1, "Why the sea has tides", "http://a/1", "the moon pulls"), Source(2, "Raft", "http://a/2", "")],
)


@pytest.mark.parametrize(
    ("parts", "said"),
    [
        (["Raft elects a ", "leader [", "2", "]. Logs follow [2][1]", "."],
         "Raft elects a leader. Logs follow.\nSources: Raft; Why the sea has tides."),
        (["潮汐主要由月球引力造成 [1]", "。"], "潮汐主要由月球引力造成。\n来源：Why the sea has tides。"),
        (["The moon pulls the sea."], "The moon pulls the sea.\nSources: Why the sea has tides."),  # attributed
        (["I do not know [7]."], "I do not know."),  # no source drawn on: no sources sentence
    ],
)  # fmt: skip
async def test_an_answer_from_the_web_loses_its_markers_and_names_its_sources(parts: list[str], said: str) -> None:
    assert await spoken_from_the_web(answer_chunks(*parts), FOUND) == said
