"""``WS /v1/realtime`` driven by the openai SDK on the real SmolLM2: text turns, GA and beta names,
cancel, bad events, auth, limits. Every server event is validated by the SDK's own event types."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import websockets

from tests.llm.conftest import Running
from tests.llm.realtime_client import client, receive, send_audio, spoken_pcm, types, until

TEXT_ONLY = {"type": "realtime", "output_modalities": ["text"], "audio": {"input": {"turn_detection": None}}}


def said(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


@contextmanager
def settings_changed(running: Running, **changes: object) -> Iterator[None]:
    settings = running.app.state.settings
    before = {name: getattr(settings, name) for name in changes}
    for name, value in changes.items():
        setattr(settings, name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            setattr(settings, name, value)


async def test_a_text_turn_streams_the_answer_in_openai_order(smol: Running) -> None:
    async with client(smol.url).realtime.connect(model="gpt-realtime") as connection:
        created = await receive(connection)
        assert created["type"] == "session.created"
        session = created["session"]
        assert session["type"] == "realtime" and session["model"] == "gpt-realtime"
        assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"

        await connection.session.update(session={**TEXT_ONLY, "instructions": "Answer in one sentence."})
        updated = await receive(connection)
        assert updated["type"] == "session.updated" and updated["session"]["output_modalities"] == ["text"]
        assert updated["session"]["instructions"] == "Answer in one sentence."

        await connection.conversation.item.create(item=said("What is the capital of France?"))
        added = await until(connection, "conversation.item.done")
        user_id = added[0]["item"]["id"]
        await connection.response.create()
        events = await until(connection, "response.done")

    kinds = types(events)
    assert kinds[:4] == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
    ]
    assert kinds[-5:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas.strip()
    assert events[2]["previous_item_id"] == user_id
    done = events[-1]["response"]
    assert done["status"] == "completed"
    assert done["output"][0]["content"] == [{"type": "output_text", "text": deltas}]
    assert next(e for e in events if e["type"] == "response.output_text.done")["text"] == deltas
    usage = done["usage"]  # the embedded engine's counts: the prompt and the tokens it wrote
    assert usage["input_tokens"] > 10 and 0 < usage["output_tokens"] <= 48
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["output_token_details"] == {"text_tokens": usage["output_tokens"], "audio_tokens": 0}


async def test_the_beta_protocol_has_the_beta_names(smol: Running) -> None:
    async with client(smol.url).beta.realtime.connect(model="gpt-4o-realtime-preview") as connection:
        created = await receive(connection, beta=True)
        assert created["session"]["modalities"] == ["text", "audio"]
        assert created["session"]["input_audio_format"] == "pcm16"
        await connection.session.update(session={"modalities": ["text"], "turn_detection": None})
        assert (await receive(connection, beta=True))["session"]["modalities"] == ["text"]
        await connection.conversation.item.create(item=said("Say hello."))
        assert (await receive(connection, beta=True))["type"] == "conversation.item.created"
        await connection.response.create()
        events = await until(connection, "response.done", beta=True)
    kinds = set(types(events))
    assert {"response.text.delta", "response.text.done", "conversation.item.created"} <= kinds
    assert not kinds & {"response.output_text.delta", "conversation.item.done", "conversation.item.added"}
    assert events[-1]["response"]["modalities"] == ["text"]
    assert events[-1]["response"]["output"][0]["content"][0]["type"] == "text"


async def test_cancel_and_a_second_response_while_one_runs(smol: Running) -> None:
    async with client(smol.url).realtime.connect(model="gpt-realtime") as connection:
        await until(connection, "session.created")
        await connection.session.update(session=TEXT_ONLY)
        await until(connection, "session.updated")
        await connection.conversation.item.create(item=said("Count from one to one hundred."))
        await connection.response.create()
        await until(connection, "response.output_text.delta")
        await connection.send({"type": "response.create", "event_id": "second"})
        error = await until(connection, "error")
        assert error[-1]["error"]["code"] == "conversation_already_has_active_response"
        assert error[-1]["error"]["event_id"] == "second"
        await connection.response.cancel()
        done = (await until(connection, "response.done"))[-1]["response"]
        assert done["status"] == "cancelled"
        assert done["status_details"]["reason"] == "client_cancelled"
        assert done["output"][0]["status"] == "incomplete"
        await connection.response.cancel()
        assert (await until(connection, "error"))[-1]["error"]["code"] == "response_cancel_not_active"
        # the conversation goes on: the cancelled answer is kept, a new response runs
        await connection.conversation.item.create(item=said("Say yes."))
        await connection.response.create()
        assert (await until(connection, "response.done"))[-1]["response"]["status"] == "completed"


async def test_items_are_created_retrieved_deleted_and_function_outputs_accepted(smol: Running) -> None:
    async with client(smol.url).realtime.connect(model="gpt-realtime") as connection:
        await until(connection, "session.created")
        await connection.conversation.item.create(item={**said("first"), "id": "item_first"})
        await until(connection, "conversation.item.done")
        output = {"type": "function_call_output", "call_id": "call_1", "output": '{"ok": true}'}
        await connection.conversation.item.create(item=output)
        added = (await until(connection, "conversation.item.done"))[0]
        assert added["previous_item_id"] == "item_first" and added["item"]["call_id"] == "call_1"
        await connection.conversation.item.retrieve(item_id="item_first")
        retrieved = (await until(connection, "conversation.item.retrieved"))[-1]["item"]
        assert retrieved["content"] == [{"type": "input_text", "text": "first"}]
        await connection.conversation.item.delete(item_id="item_first")
        assert (await until(connection, "conversation.item.deleted"))[-1]["item_id"] == "item_first"
        await connection.send({"type": "conversation.item.retrieve", "item_id": "item_first", "event_id": "ev1"})
        error = (await until(connection, "error"))[-1]["error"]
        assert error["code"] == "item_not_found" and error["event_id"] == "ev1"


@pytest.mark.parametrize(
    ("event", "code", "param"),
    [
        ({"type": "no.such.event"}, "invalid_event", "type"),
        ({"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/opus"}}}}},
         "invalid_value", "session.audio.input.format"),
        ({"type": "session.update", "session": {"audio": {"input": {"turn_detection": {"threshold": 3}}}}},
         "invalid_value", "session.audio.input.turn_detection.threshold"),
        ({"type": "session.update", "session": {"output_modalities": ["video"]}}, "invalid_value",
         "session.output_modalities"),
        ({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": "hi"}},
         "invalid_value", "item.content"),
        ({"type": "input_audio_buffer.append", "audio": "not base64!"}, "invalid_value", "audio"),
        ({"type": "input_audio_buffer.commit"}, "input_audio_buffer_commit_empty", None),
        ({"type": "conversation.item.truncate", "item_id": "nope", "content_index": 0, "audio_end_ms": 0},
         "item_not_found", "item_id"),
    ],
)  # fmt: skip
async def test_a_bad_event_is_an_error_event_and_the_session_goes_on(smol: Running, event, code, param) -> None:
    async with client(smol.url).realtime.connect(model="gpt-realtime") as connection:
        await until(connection, "session.created")
        await connection.send({**event, "event_id": "client_1"})
        error = await receive(connection)
        assert error["type"] == "error"
        assert error["error"]["code"] == code and error["error"]["param"] == param
        assert error["error"]["event_id"] == "client_1" and error["error"]["message"]
        await connection.session.update(session={"instructions": "still here"})
        assert (await receive(connection))["session"]["instructions"] == "still here"


async def test_not_json_and_short_commits_are_errors(smol: Running) -> None:
    url = smol.url.replace("http", "ws") + "/v1/realtime?model=gpt-realtime"
    async with websockets.connect(url) as socket:
        assert json.loads(await socket.recv())["type"] == "session.created"
        await socket.send("{not json")
        assert json.loads(await socket.recv())["error"]["code"] == "invalid_json"
        await socket.send(
            json.dumps({"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}})
        )
        await socket.recv()
        fifty_ms = base64.b64encode(b"\0\0" * 1200).decode()
        await socket.send(json.dumps({"type": "input_audio_buffer.append", "audio": fifty_ms}))
        await socket.send(json.dumps({"type": "input_audio_buffer.commit"}))
        error = json.loads(await socket.recv())["error"]
        assert error["code"] == "input_audio_buffer_commit_empty" and "50 ms" in error["message"]
        await socket.send(json.dumps({"type": "input_audio_buffer.clear"}))
        assert json.loads(await socket.recv())["type"] == "input_audio_buffer.cleared"


async def test_audio_beyond_the_cap_is_refused(smol: Running) -> None:
    with settings_changed(smol, realtime_max_buffer_s=1.0):
        async with client(smol.url).realtime.connect(model="gpt-realtime") as connection:
            await until(connection, "session.created")
            second = base64.b64encode(b"\0\0" * 24_000).decode()
            await connection.input_audio_buffer.append(audio=second)
            await connection.input_audio_buffer.append(audio=second)
            error = (await until(connection, "error"))[-1]["error"]
            assert error["code"] == "input_audio_buffer_full" and "1 s" in error["message"]


async def test_speech_longer_than_the_buffer_is_committed_at_the_cap(smol: Running, tmp_path) -> None:
    speech = spoken_pcm("What is the capital of France?", tmp_path / "question")  # about 1.8 s
    with settings_changed(smol, realtime_max_buffer_s=1.0):
        async with client(smol.url).realtime.connect(model="gpt-realtime") as connection:
            await until(connection, "session.created")
            await send_audio(connection, speech)
            events = await until(connection, "input_audio_buffer.committed")
            assert types(events)[:2] == ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped"]
            assert events[1]["audio_end_ms"] <= 1000
            assert "error" not in types(events)


async def test_the_session_ends_at_its_time_limit(smol: Running) -> None:
    with settings_changed(smol, realtime_max_session_s=1.0):
        async with client(smol.url).realtime.connect(model="gpt-realtime") as connection:
            await until(connection, "session.created")
            error = (await until(connection, "error", timeout=10))[-1]["error"]
            assert error["code"] == "session_expired"
            with pytest.raises(Exception, match="1000|closed|OK"):
                await connection.recv_bytes()


async def test_a_client_that_vanishes_mid_answer_frees_its_session(smol: Running) -> None:
    url = smol.url.replace("http", "ws") + "/v1/realtime"
    socket = await websockets.connect(url)
    await socket.recv()
    await socket.send(json.dumps({"type": "session.update", "session": TEXT_ONLY}))
    await socket.send(json.dumps({"type": "conversation.item.create", "item": said("Count to one hundred.")}))
    await socket.send(json.dumps({"type": "response.create"}))
    while json.loads(await socket.recv())["type"] != "response.output_text.delta":
        pass
    assert len(smol.app.state.realtime_sessions) == 1
    socket.transport.abort()  # gone, without a closing handshake
    for _ in range(100):
        if not smol.app.state.realtime_sessions:
            break
        await asyncio.sleep(0.1)
    assert not smol.app.state.realtime_sessions
    async with client(smol.url).realtime.connect(model="gpt-realtime") as connection:  # the engine still answers
        await until(connection, "session.created")
        await connection.session.update(session=TEXT_ONLY)
        await connection.conversation.item.create(item=said("Say yes."))
        await connection.response.create()
        assert (await until(connection, "response.done"))[-1]["response"]["status"] == "completed"


async def test_the_key_comes_as_bearer_or_as_the_browser_subprotocol(smol: Running) -> None:
    with settings_changed(smol, api_key="sekrit"):
        with pytest.raises(Exception, match="1008|unauthorized|403|rejected"):
            async with client(smol.url, api_key="wrong").realtime.connect(model="gpt-realtime") as connection:
                await receive(connection)
        async with client(smol.url, api_key="sekrit").realtime.connect(model="gpt-realtime") as connection:
            assert (await receive(connection))["type"] == "session.created"
        url = smol.url.replace("http", "ws") + "/v1/realtime?model=gpt-realtime"
        protocols = ["realtime", "openai-insecure-api-key.sekrit", "openai-beta.realtime-v1"]
        async with websockets.connect(url, subprotocols=protocols) as socket:  # type: ignore[arg-type]
            assert socket.subprotocol == "realtime"
            created = json.loads(await socket.recv())
            assert created["type"] == "session.created" and created["session"]["modalities"] == ["text", "audio"]


async def test_a_voice_session_without_its_siblings_fails_its_turn_not_the_session(smol: Running) -> None:
    async with client(smol.url).realtime.connect(model="gpt-realtime") as connection:
        await until(connection, "session.created")
        await connection.session.update(session={"audio": {"input": {"turn_detection": None}}})
        await until(connection, "session.updated")
        await connection.input_audio_buffer.append(audio=base64.b64encode(b"\1\0" * 4800).decode())
        await connection.input_audio_buffer.commit()
        events = await until(connection, "conversation.item.input_audio_transcription.failed")
        assert "asr" in events[-1]["error"]["message"]
        await connection.conversation.item.create(item=said("Say yes."))
        await connection.response.create()
        events = await until(connection, "response.done")
        assert events[-1]["response"]["status"] == "failed"
        assert "tts" in next(e for e in events if e["type"] == "error")["error"]["message"]
