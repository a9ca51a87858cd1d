"""Voice turns on ``WS /v1/realtime`` over the real suite: espeak-ng speech in, Whisper (asr) hears it,
the embedded llm answers, espeak-ng (tts) speaks it back; barge-in, truncation, transcription sessions,
and a Mandarin round trip on the default Qwen. Driven by the openai SDK; events checked by its types."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm.app import create_app
from llm.config import Settings
from llm.realtime.speech import ClauseCutter
from tests.llm.conftest import LOAD_TIMEOUT_S, SMOL, Running, serve
from tests.llm.realtime_client import (
    audio_of,
    client,
    receive,
    send_audio,
    silence,
    spoken_pcm,
    types,
    until,
    until_all,
)


def last(events: list[dict], kind: str) -> dict:
    return [event for event in events if event["type"] == kind][-1]


CJK = re.compile(r"[\u4e00-\u9fff]")


def voice_app(asr: str, tts: str, **settings: object) -> Settings:
    return Settings(embedding_url="", asr_url=asr, tts_url=tts, **settings)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def voice(asr_service: str, tts_service: str) -> Iterator[Running]:
    """SmolLM2 with the real asr and tts services as siblings; short answers but for the barge-in's story."""
    settings = voice_app(asr_service, tts_service, embedded_model=SMOL, max_tokens=200)  # the story runs long
    with serve(create_app(settings), ready_timeout_s=LOAD_TIMEOUT_S) as running:
        yield running


@pytest.fixture(scope="module")
def question(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return spoken_pcm("What is the capital of France?", tmp_path_factory.mktemp("speech") / "question")


async def test_a_spoken_question_is_heard_answered_and_spoken(voice: Running, question: bytes) -> None:
    async with client(voice.url).realtime.connect(model="gpt-realtime") as connection:
        await until(connection, "session.created")
        await connection.session.update(session={"type": "realtime", "max_output_tokens": 48})
        await until(connection, "session.updated")
        await send_audio(connection, silence(300) + question + silence(900))
        events = await until_all(connection, "response.done", "conversation.item.input_audio_transcription.completed")
        kinds = types(events)
        heard = [k for k in kinds if k.startswith(("input_audio_buffer", "conversation.item.input"))]
        assert heard == [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.input_audio_transcription.delta",
            "conversation.item.input_audio_transcription.completed",
        ]
        started = events[kinds.index("input_audio_buffer.speech_started")]
        stopped = events[kinds.index("input_audio_buffer.speech_stopped")]
        speech_ms = len(question) * 1000 // 48_000
        assert 150 <= started["audio_start_ms"] <= 600  # the speech begins after 300 ms of silence
        assert abs(stopped["audio_end_ms"] - (300 + speech_ms)) <= 400
        transcript = events[kinds.index("conversation.item.input_audio_transcription.completed")]["transcript"]
        assert "capital" in transcript.lower() and "france" in transcript.lower()
        assert kinds.index("input_audio_buffer.committed") < kinds.index("response.created")
        # the answer starts from asr's draft; its full pass waits until the answer has sent its first audio
        assert kinds.index("response.output_audio.delta") < kinds.index(
            "conversation.item.input_audio_transcription.completed"
        )

        said = "".join(e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta")
        audio = audio_of(events)
        assert said.strip() and len(audio) > 48_000 * 0.3  # spoken: at least 0.3 s of 24 kHz PCM16
        assert kinds.index("response.output_audio_transcript.delta") < kinds.index("response.output_audio.delta")
        done = last(events, "response.done")["response"]
        assert done["status"] == "completed" and done["output"][0]["content"][0] == {
            "type": "output_audio",
            "transcript": said,
        }

        # the client heard only the first part: the transcript is cut to what was heard
        item_id = done["output"][0]["id"]
        heard_ms = len(audio) * 1000 // 48_000 // 3
        await connection.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=heard_ms)
        truncated = (await until(connection, "conversation.item.truncated"))[-1]
        assert truncated["audio_end_ms"] == heard_ms
        await connection.conversation.item.retrieve(item_id=item_id)
        kept = (await until(connection, "conversation.item.retrieved"))[-1]["item"]["content"][0]["transcript"]
        assert kept and len(kept) < len(said) and said.startswith(kept)
        await connection.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=10**7)
        assert (await until(connection, "error"))[-1]["error"]["param"] == "audio_end_ms"


async def test_speech_during_an_answer_interrupts_it(voice: Running, question: bytes) -> None:
    async with client(voice.url).realtime.connect(model="gpt-realtime") as connection:
        await until(connection, "session.created")
        story = "Tell me a long story about a dragon, a knight and a king."
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": story}]}
        await connection.conversation.item.create(item=item)
        await connection.response.create()
        before = await until(connection, "response.output_audio.delta")
        response_id = before[-1]["response_id"]
        await send_audio(connection, silence(300) + question + silence(900))
        events = await until(connection, "response.done")
        kinds = types(events)
        assert kinds.index("input_audio_buffer.speech_started") < len(kinds) - 1
        cancelled = events[-1]["response"]
        assert cancelled["id"] == response_id and cancelled["status"] == "cancelled"
        assert cancelled["status_details"]["reason"] == "turn_detected"
        sent = "".join(e["delta"] for e in before + events if e["type"] == "response.output_audio_transcript.delta")
        assert cancelled["output"][0]["status"] == "incomplete"
        assert cancelled["output"][0]["content"][0]["transcript"] == sent  # what was sent, no more

        # the interrupting question is then heard and answered
        events = await until_all(connection, "response.done", "conversation.item.input_audio_transcription.completed")
        assert not [e for e in events if e.get("response_id") == response_id]  # the old answer's audio stopped
        assert (
            "capital"
            in events[types(events).index("conversation.item.input_audio_transcription.completed")][
                "transcript"
            ].lower()
        )
        assert last(events, "response.done")["response"]["status"] == "completed"


async def test_the_beta_protocol_speaks_with_the_beta_names(voice: Running, question: bytes) -> None:
    async with client(voice.url).beta.realtime.connect(model="gpt-4o-realtime-preview") as connection:
        await until(connection, "session.created", beta=True)
        await connection.session.update(session={"voice": "echo", "max_response_output_tokens": 24})
        assert (await receive(connection, beta=True))["session"]["voice"] == "echo"
        await send_audio(connection, silence(300) + question + silence(900))
        events = await until(connection, "response.done", beta=True)
    kinds = set(types(events))
    assert {"response.audio.delta", "response.audio_transcript.delta", "conversation.item.created"} <= kinds
    assert not kinds & {"response.output_audio.delta", "conversation.item.added"}
    assert audio_of(events, "response.audio.delta")
    assert events[-1]["response"]["voice"] == "echo"


async def test_a_transcription_session_only_transcribes(voice: Running, question: bytes) -> None:
    async with client(voice.url).realtime.connect(model="gpt-realtime", extra_query={"intent": "transcription"}) as c:
        created = await receive(c)
        assert created["session"]["type"] == "transcription"
        await send_audio(c, silence(300) + question + silence(900))
        events = await until(c, "conversation.item.input_audio_transcription.completed")
        assert "capital" in events[-1]["transcript"].lower()
        assert "response.created" not in types(events)
        await c.response.create()
        assert (await until(c, "error"))[-1]["error"]["param"] == "type"


@pytest.fixture(scope="module")
def qwen_voice(asr_service: str, tts_service: str) -> Iterator[Running]:
    """The default Qwen with the real asr and tts services as siblings."""
    with serve(create_app(voice_app(asr_service, tts_service, max_tokens=64)), ready_timeout_s=LOAD_TIMEOUT_S) as r:
        yield r


async def test_mandarin_in_mandarin_out(qwen_voice: Running, tmp_path: Path) -> None:
    pcm = spoken_pcm("我爱我的妈妈。", tmp_path / "mandarin", chinese=True)
    async with client(qwen_voice.url).realtime.connect(model="gpt-realtime") as connection:
        await until(connection, "session.created")
        session = {
            "instructions": "你是一个助手。请用一句简短的中文回答。",
            "audio": {"input": {"transcription": {"model": "whisper-1", "language": "zh"}}},
        }
        await connection.session.update(session=session)
        await until(connection, "session.updated")
        await send_audio(connection, silence(200) + pcm + silence(900))
        events = await until_all(
            connection, "response.done", "conversation.item.input_audio_transcription.completed", timeout=180
        )
    transcript = events[types(events).index("conversation.item.input_audio_transcription.completed")]["transcript"]
    assert CJK.search(transcript), transcript
    said = last(events, "response.done")["response"]["output"][0]["content"][0]["transcript"]
    assert CJK.search(said), said
    assert len(audio_of(events)) > 48_000 * 0.3


async def test_without_turn_detection_the_client_commits_and_asks(voice: Running, question: bytes) -> None:
    async with client(voice.url).realtime.connect(model="gpt-realtime") as connection:
        await until(connection, "session.created")
        manual = {"output_modalities": ["text"], "max_output_tokens": 48, "audio": {"input": {"turn_detection": None}}}
        await connection.session.update(session=manual)
        await until(connection, "session.updated")
        await send_audio(connection, question)
        await connection.input_audio_buffer.commit()
        await connection.response.create()  # sent at once: the answer waits for the transcript
        events = await until_all(connection, "response.done", "conversation.item.input_audio_transcription.completed")
    kinds = types(events)
    assert "input_audio_buffer.speech_started" not in kinds
    transcript = last(events, "conversation.item.input_audio_transcription.completed")["transcript"]
    assert "capital" in transcript.lower()
    assert kinds.index("conversation.item.input_audio_transcription.completed") < kinds.index(
        "response.output_text.delta"
    )
    assert last(events, "response.done")["response"]["status"] == "completed"


@pytest.mark.parametrize(
    ("deltas", "chunks"),
    [
        (["Paris", " is", " the", " capital", " of", " France", "."], ["Paris is the capital", "of France."]),
        (["Blue", "."], ["Blue."]),
        (["Yes", ",", " a", " week", " has", " seven", " days", "."], ["Yes,", "a week has seven days."]),
        (["天空", "是", "蓝色", "的", "，", "因为", "阳光", "。"], ["天空是蓝色的", "，因为阳光。"]),
        (["我", "很", "好", "。"], ["我很好。"]),
    ],
)
def test_the_first_chunk_goes_to_tts_after_a_few_words(deltas: list[str], chunks: list[str]) -> None:
    """The voice starts after a clause or four words (six Chinese characters), whichever comes first."""
    cutter = ClauseCutter()
    cut = [chunk for delta in deltas for chunk in cutter.feed(delta)]
    rest = cutter.rest()
    assert cut + ([rest] if rest else []) == chunks
