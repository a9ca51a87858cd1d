"""WS /asr/ws: PCM16 frames in, partials as pauses close speech, a final text after {"event": "end"}."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import websockets

from services.media import decode_audio
from tests.asr.conftest import SENTENCES
from tests.asr.speech import word_error_rate


def pcm16(path, rate: int = 16_000) -> bytes:
    audio = decode_audio(path.read_bytes())  # 16 kHz float32
    if rate != 16_000:
        positions = np.arange(0, audio.size, 16_000 / rate)
        audio = np.interp(positions, np.arange(audio.size), audio).astype(np.float32)
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


async def live(url: str, pcm: bytes, *, first: dict | None = None, frame_bytes: int = 3200) -> list[dict]:
    messages: list[dict] = []
    async with websockets.connect(url) as socket:
        try:
            if first is not None:
                await socket.send(json.dumps(first))
            for start in range(0, len(pcm), frame_bytes):
                await socket.send(pcm[start : start + frame_bytes])
            await socket.send(json.dumps({"event": "end"}))
        except websockets.ConnectionClosed:
            pass  # the server hung up early (an error): read what it said
        try:
            while True:
                messages.append(json.loads(await socket.recv()))
        except websockets.ConnectionClosed:
            pass
    return messages


def test_live_socket_sends_partials_then_a_final_text(server, sentences_wav):
    url = server.url.replace("http", "ws") + "/asr/ws"
    messages = asyncio.run(live(url, pcm16(sentences_wav)))
    partials = [m for m in messages if m["type"] == "partial"]
    assert len(partials) >= 2, messages
    final = messages[-1]
    assert final["type"] == "final" and final["final"] is True
    assert word_error_rate(SENTENCES, final["text"]) <= 0.35, final
    assert final["text"].startswith(partials[0]["text"])


def test_live_socket_accepts_another_sample_rate_named_first(server, short_wav):
    url = server.url.replace("http", "ws") + "/asr/ws"
    messages = asyncio.run(live(url, pcm16(short_wav, 8000), first={"sample_rate": 8000, "language": "en"}))
    assert messages[-1]["type"] == "final" and messages[-1]["text"], messages
    assert 3 < messages[-1]["duration"] < 6


def test_live_socket_rejects_an_unknown_format_with_an_error_message(server):
    url = server.url.replace("http", "ws") + "/asr/ws"
    messages = asyncio.run(live(url, b"", first={"format": "mp3"}))
    assert messages[-1]["type"] == "error"
    assert "pcm_s16le" in messages[-1]["error"]["message"]
