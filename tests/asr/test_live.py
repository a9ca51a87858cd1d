"""WS /asr/ws: PCM16 frames in; as pauses close speech a draft, then the full pass's partial; a final at the end."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
import websockets

from asr.engines.whisper_draft import cut_repetition
from services.media import decode_audio
from tests.asr.conftest import SENTENCES
from tests.asr.speech import speak_chinese, word_error_rate


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


async def live_paced(url: str, pcm: bytes, *, first: dict | None = None) -> tuple[list[dict], float]:
    """Frames at real-time pace, as a microphone sends them: the messages, and when the end event went
    (seconds from the first frame); each message gets ``at``, its arrival in the same seconds."""
    frame = 3200  # 100 ms
    messages: list[dict] = []
    async with websockets.connect(url) as socket:
        started = time.perf_counter()
        if first is not None:
            await socket.send(json.dumps(first))

        async def send() -> float:
            for index, offset in enumerate(range(0, len(pcm), frame)):
                await socket.send(pcm[offset : offset + frame])
                await asyncio.sleep(max(0.0, started + (index + 1) * 0.1 - time.perf_counter()))
            await socket.send(json.dumps({"event": "end"}))
            return time.perf_counter() - started

        async def receive() -> None:
            async for message in socket:
                messages.append({**json.loads(message), "at": time.perf_counter() - started})

        ended, _ = await asyncio.gather(send(), receive())
    return messages, ended


def test_live_drafts_each_phrase_while_the_client_talks_then_the_full_pass_replaces_it(server, sentences_wav):
    url = server.url.replace("http", "ws") + "/asr/ws"
    messages, ended = asyncio.run(live_paced(url, pcm16(sentences_wav)))
    drafts = [m for m in messages if m["type"] == "draft"]
    partials = [m for m in messages if m["type"] == "partial"]
    final = messages[-1]
    assert len(drafts) >= 2 and final["type"] == "final", messages
    # the first phrase's draft comes while the client is still speaking the next ones, not after the end
    assert drafts[0]["at"] < ended, messages
    # every stretch the full pass sends had its phrases drafted first
    for partial in partials:
        earlier = [d for d in drafts if d["at"] <= partial["at"] and partial["start"] <= d["start"] < partial["end"]]
        assert earlier, (partial, drafts)
    # the quick pass is a usable draft; the final text is the full pass's partials, in order
    assert word_error_rate(SENTENCES, " ".join(d["text"] for d in drafts)) <= 0.5, drafts
    assert final["text"] == " ".join(p["text"] for p in partials)
    assert word_error_rate(SENTENCES, final["text"]) <= 0.35, final


def test_with_full_pass_at_end_only_drafts_come_until_the_end_event(server, sentences_wav):
    url = server.url.replace("http", "ws") + "/asr/ws"
    messages, ended = asyncio.run(live_paced(url, pcm16(sentences_wav), first={"full_pass": "at_end"}))
    drafts = [m for m in messages if m["type"] == "draft"]
    partials = [m for m in messages if m["type"] == "partial"]
    final = messages[-1]
    assert len(drafts) >= 2 and drafts[0]["at"] < ended, messages  # drafts as the client talks
    assert partials and all(p["at"] >= ended for p in partials), messages  # the full pass only after the end
    assert final["type"] == "final" and final["text"] == " ".join(p["text"] for p in partials)
    assert word_error_rate(SENTENCES, final["text"]) <= 0.35, final


def test_an_unknown_full_pass_is_an_error_message(server):
    url = server.url.replace("http", "ws") + "/asr/ws"
    messages = asyncio.run(live(url, b"", first={"full_pass": "later"}))
    assert messages[-1]["type"] == "error" and "at_end" in messages[-1]["error"]["message"], messages


def test_live_socket_transcribes_mandarin(server, audio_dir):
    url = server.url.replace("http", "ws") + "/asr/ws"
    wav = speak_chinese("我爱我的妈妈。", audio_dir / "live-mandarin.wav")
    messages = asyncio.run(live(url, pcm16(wav), first={"language": "zh"}))
    final = messages[-1]
    assert final["type"] == "final" and final["language"] == "zh", messages
    assert any(m["type"] == "draft" for m in messages), messages
    assert "妈妈" in final["text"] or "媽媽" in final["text"], final


async def live_with_pings(url: str, pcm: bytes) -> tuple[list[float], list[dict]]:
    """All frames at once and the end event, then a WebSocket ping every 50 ms until the final comes:
    the seconds each pong took, and the messages."""
    async with websockets.connect(url, ping_interval=None) as socket:
        for start in range(0, len(pcm), 3200):
            await socket.send(pcm[start : start + 3200])
        await socket.send(json.dumps({"event": "end"}))
        pongs: list[float] = []
        messages: list[dict] = []

        async def ping() -> None:
            while True:
                sent = time.perf_counter()
                await asyncio.wait_for(await socket.ping(), timeout=5)
                pongs.append(time.perf_counter() - sent)
                await asyncio.sleep(0.05)

        pinger = asyncio.create_task(ping())
        while not messages or messages[-1]["type"] != "final":
            messages.append(json.loads(await socket.recv()))
        if pinger.done():
            pinger.result()  # a pong that never came: TimeoutError
        pinger.cancel()
    return pongs, messages


def test_live_socket_answers_keep_alive_pings_while_the_model_transcribes(server, sentences_wav):
    url = server.url.replace("http", "ws") + "/asr/ws"
    pongs, messages = asyncio.run(live_with_pings(url, pcm16(sentences_wav)))
    assert messages[-1]["type"] == "final" and messages[-1]["text"], messages
    # the model works for seconds after the end event; every ping sent meanwhile is answered at once
    assert len(pongs) >= 5, pongs
    assert max(pongs) < 0.5, pongs


@pytest.mark.parametrize(
    ("looped", "draft"),
    [
        ("Thank you very much. Thank you very much. Thank", "Thank you very much."),
        ("I will like a cup of tea. I will like a", "I will like a cup of tea."),
        ("But wherever is ice today, but wherever is ice today", "But wherever is ice today"),
        ("我们去公园散步吧喲喲喲喲喲喲", "我们去公园散步吧喲"),
        ("My brother likes to read books.", "My brother likes to read books."),
        ("我爱我的妈妈。", "我爱我的妈妈。"),
        ("It costs 1000000 dollars.", "It costs 1000000 dollars."),
    ],
)
def test_a_draft_that_loops_over_the_phrase_is_cut_where_it_starts_again(looped, draft):
    assert cut_repetition(looped) == draft
