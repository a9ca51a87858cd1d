"""Audio formats on ``WS /v1/realtime``: G.711 μ-law (``audio/pcmu``, beta ``g711_ulaw``) and A-law
(``audio/pcma``, ``g711_alaw``) at 8 kHz in and out, besides PCM16 24 kHz; ``noise_reduction``; and
formats that are not served. G.711 audio in the tests is made and read by sox, not by lingxi's code."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from llm.app import create_app
from llm.config import Settings
from llm.realtime.formats import AudioIn, audio_out, g711_decode, g711_encode
from tests.llm.conftest import LOAD_TIMEOUT_S, SMOL, Running, serve
from tests.llm.realtime_client import audio_of, client, receive, spoken_pcm, types, until, until_all

SOX_TYPES = {"audio/pcmu": "u-law", "audio/pcma": "a-law"}


def pcm16(*samples: int) -> bytes:
    return np.array(samples, "<i2").tobytes()


def test_g711_matches_the_standards_tables() -> None:
    # ITU-T G.711: μ-law 0xFF/0x7F are 0, 0x80/0x00 the largest (±32124); A-law 0xD5/0x55 are ±8, 0xAA/0x2A ±32256
    assert g711_decode(bytes([0xFF, 0x7F, 0x80, 0x00]), "audio/pcmu") == pcm16(0, 0, 32124, -32124)
    assert g711_decode(bytes([0xD5, 0x55, 0xAA, 0x2A]), "audio/pcma") == pcm16(8, -8, 32256, -32256)
    assert g711_encode(pcm16(0, 32767, -32768, 1000), "audio/pcmu") == bytes([0xFF, 0x80, 0x00, 0xCE])
    assert g711_encode(pcm16(0, 32767, -32768, 1000), "audio/pcma") == bytes([0xD5, 0xAA, 0x2A, 0xFA])


@pytest.mark.parametrize("fmt", ["audio/pcmu", "audio/pcma"])
def test_g711_at_8_khz_to_24_khz_pcm_and_back(fmt: str) -> None:
    t = np.arange(24_000) / 24_000
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()  # a second of 440 Hz
    sent = audio_out(tone, fmt)
    assert len(sent) == 8000  # a byte a sample at 8 kHz
    heard = AudioIn(fmt)
    back = np.frombuffer(b"".join(heard(sent[i : i + 160]) for i in range(0, len(sent), 160)), "<i2")
    assert abs(len(back) - 24_000) <= 100  # 24 kHz again, appended 20 ms at a time
    rms = np.sqrt(np.mean(back[2400:-2400].astype(float) ** 2))
    assert abs(rms - 8000 / np.sqrt(2)) < 150
    spectrum = np.abs(np.fft.rfft(back[: 24_000 - 48]))
    assert abs(np.argmax(spectrum) * 24_000 / (24_000 - 48) - 440) < 3


def sox_encode(pcm: bytes, fmt: str, path: Path) -> bytes:
    raw, out = path.with_suffix(".s16"), path.with_suffix(".g711")
    raw.write_bytes(pcm)
    pcm_in = ["-t", "raw", "-r", "24000", "-e", "signed", "-b", "16", "-c", "1", str(raw)]
    subprocess.run(["sox", *pcm_in, "-t", "raw", "-r", "8000", "-e", SOX_TYPES[fmt], "-b", "8", str(out)], check=True)
    return out.read_bytes()


def sox_decode(data: bytes, fmt: str, path: Path) -> np.ndarray:
    coded, out = path.with_suffix(".g711"), path.with_suffix(".s16")
    coded.write_bytes(data)
    g711_in = ["-t", "raw", "-r", "8000", "-e", SOX_TYPES[fmt], "-b", "8", "-c", "1", str(coded)]
    subprocess.run(["sox", *g711_in, "-t", "raw", "-e", "signed", "-b", "16", str(out)], check=True)
    return np.frombuffer(out.read_bytes(), "<i2")


@pytest.fixture(scope="module")
def voice(asr_service: str, tts_service: str) -> Iterator[Running]:
    settings = Settings(embedding_url="", asr_url=asr_service, tts_url=tts_service, embedded_model=SMOL, max_tokens=48)
    with serve(create_app(settings), ready_timeout_s=LOAD_TIMEOUT_S) as running:
        yield running


async def test_a_spoken_turn_in_g711_mu_law_is_heard_and_answered_in_it(voice: Running, tmp_path: Path) -> None:
    question = spoken_pcm("What is the capital of France?", tmp_path / "question")
    silent = b"\0\0" * 24_000
    coded = sox_encode(
        silent[: 24_000 * 2 * 3 // 10] + question + silent[: 24_000 * 2 * 9 // 10], "audio/pcmu", tmp_path / "q"
    )
    async with client(voice.url).realtime.connect(model="gpt-realtime") as connection:
        await until(connection, "session.created")
        session = {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}},
                                                 "output": {"format": {"type": "audio/pcmu"}}}}  # fmt: skip
        await connection.session.update(session=session)
        updated = (await until(connection, "session.updated"))[-1]["session"]
        assert updated["audio"]["input"]["format"] == updated["audio"]["output"]["format"] == {"type": "audio/pcmu"}
        for start in range(0, len(coded), 800):  # 100 ms of 8 kHz μ-law at a time
            await connection.input_audio_buffer.append(audio=base64.b64encode(coded[start : start + 800]).decode())
        events = await until_all(connection, "response.done", "conversation.item.input_audio_transcription.completed")
    kinds = types(events)
    stopped = events[kinds.index("input_audio_buffer.speech_stopped")]
    speech_ms = len(question) * 1000 // 48_000  # times are of the audio, as with PCM (telephone band: the
    assert 300 + speech_ms // 2 < stopped["audio_end_ms"] <= 300 + speech_ms + 400  # last hiss ends early)
    transcript = events[kinds.index("conversation.item.input_audio_transcription.completed")]["transcript"]
    assert "capital" in transcript.lower() and "france" in transcript.lower()
    done = events[kinds.index("response.done")]["response"]
    assert done["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    answer = audio_of(events)
    assert len(answer) > 8000 * 0.3  # at least 0.3 s at a byte a sample
    deltas = [base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"]
    assert max(len(d) for d in deltas) <= 1600  # 200 ms of 8 kHz G.711
    heard = sox_decode(answer, "audio/pcmu", tmp_path / "answer")
    assert np.sqrt(np.mean(heard.astype(float) ** 2)) > 300  # speech, not silence


async def test_the_beta_names_and_a_law(voice: Running, tmp_path: Path) -> None:
    async with client(voice.url).beta.realtime.connect(model="gpt-4o-realtime-preview") as connection:
        await until(connection, "session.created", beta=True)
        session = {"input_audio_format": "g711_alaw", "output_audio_format": "g711_alaw", "turn_detection": None,
                   "input_audio_noise_reduction": {"type": "near_field"}}  # fmt: skip
        await connection.session.update(session=session)
        updated = (await receive(connection, beta=True))["session"]
        assert updated["input_audio_format"] == updated["output_audio_format"] == "g711_alaw"
        assert updated["input_audio_noise_reduction"] == {"type": "near_field"}
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hello."}]}
        await connection.conversation.item.create(item=item)
        await connection.response.create()
        events = await until(connection, "response.done", beta=True)
    assert events[-1]["response"]["output_audio_format"] == "g711_alaw"
    heard = sox_decode(audio_of(events, "response.audio.delta"), "audio/pcma", tmp_path / "hello")
    assert len(heard) > 8000 * 0.3 and np.sqrt(np.mean(heard.astype(float) ** 2)) > 300


@pytest.mark.parametrize(
    ("session", "param"),
    [
        ({"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}, "session.audio.input.format"),
        ({"audio": {"output": {"format": {"type": "audio/opus"}}}}, "session.audio.output.format"),
        ({"audio": {"input": {"noise_reduction": {"type": "loud"}}}}, "session.audio.input.noise_reduction.type"),
    ],
)
async def test_formats_not_served_are_errors_naming_the_field(voice: Running, session: dict, param: str) -> None:
    async with client(voice.url).realtime.connect(model="gpt-realtime") as connection:
        await until(connection, "session.created")
        await connection.send({"type": "session.update", "session": session, "event_id": "fmt"})
        error = (await receive(connection))["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == param and error["event_id"] == "fmt"
        await connection.session.update(session={"audio": {"input": {"noise_reduction": {"type": "far_field"}}}})
        updated = (await receive(connection))["session"]
        assert updated["audio"]["input"]["noise_reduction"] == {"type": "far_field"}
        assert updated["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}  # unchanged by the error


async def test_an_unknown_beta_format_is_an_error(voice: Running) -> None:
    async with client(voice.url).beta.realtime.connect(model="gpt-4o-realtime-preview") as connection:
        await until(connection, "session.created", beta=True)
        await connection.send({"type": "session.update", "session": {"output_audio_format": "opus"}})
        error = (await receive(connection, beta=True))["error"]
        assert error["param"] == "session.output_audio_format" and "g711_ulaw" in error["message"]
