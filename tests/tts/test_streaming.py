"""stream=true on /synthesize: the first sentence's audio goes out before the rest is synthesised."""

from __future__ import annotations

import re
import struct

import httpx

TEN_SENTENCES = " ".join(f"This is sentence number {n}, spoken one after another." for n in range(1, 11))


def sentences_done(client) -> float:
    metrics = client.get("/metrics").get_data(as_text=True)
    return float(re.search(r"^lingxi_tts_sentences_total ([0-9.e+]+)$", metrics, re.MULTILINE).group(1))


def test_tts_stream_sends_the_first_sentence_before_synthesising_the_rest(client):
    before = sentences_done(client)
    response = client.post(
        "/synthesize",
        data={"text": TEN_SENTENCES, "stream": "true"},
        content_type="multipart/form-data",
        buffered=False,
    )
    assert response.status_code == 200 and response.mimetype == "audio/wav"
    chunks = iter(response.response)
    first = next(chunks)
    assert first[:4] == b"RIFF" and first[36:40] == b"data" and len(first) > 44 + 10_000
    assert sentences_done(client) - before == 1
    rest = b"".join(chunks)
    response.close()
    assert sentences_done(client) - before == 10
    whole = client.post("/synthesize", data={"text": TEN_SENTENCES}, content_type="multipart/form-data").data
    assert first[44:] + rest == whole[44:]  # the same audio, pauses included
    assert struct.unpack("<I", first[40:44])[0] == 0xFFFFFFFF  # length unknown while streaming


def test_tts_stream_stops_synthesising_when_the_client_hangs_up(client, espeak_app):
    before = sentences_done(client)
    response = client.post(
        "/synthesize", data={"text": TEN_SENTENCES, "stream": "1"}, content_type="multipart/form-data", buffered=False
    )
    next(iter(response.response))
    response.close()
    assert sentences_done(client) - before == 1
    assert espeak_app.extensions["tts"].admitted == 0


def test_tts_stream_is_chunked_over_http(espeak_server):
    with httpx.stream(
        "POST", f"{espeak_server.url}/synthesize", data={"text": TEN_SENTENCES, "stream": "true"}, timeout=60
    ) as response:
        assert response.status_code == 200
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers
        body = b"".join(response.iter_bytes())
    assert body[:4] == b"RIFF" and len(body) > 44 + 22050 * 2 * 10


def test_tts_stream_validates_before_the_first_byte(client):
    response = client.post(
        "/synthesize", data={"text": "hi", "style": "nope", "stream": "true"}, content_type="multipart/form-data"
    )
    assert response.status_code == 400 and "style1" in response.get_json()["error"]["message"]
