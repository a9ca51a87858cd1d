"""Fuzzing every tts route (tests/fuzz.py) on the real espeak-ng engine behind waitress. Flask has no
OpenAPI schema of its own, so the routes are described here as the README and the seed describe them."""

import httpx

from tests.fuzz import fuzz

FORM = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "maxLength": 400},
        "style": {"type": "string"},
        "temperature": {"type": "number"},
        "top_p": {"type": "number"},
        "speed": {"type": "number"},
        "stream": {"type": "string", "enum": ["true", "false"]},
        "prompt_audio": {"type": "string", "format": "binary"},
    },
    "required": ["text"],
}
SPEECH = {
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "input": {"type": "string", "maxLength": 400},
        "voice": {"type": "string"},
        "response_format": {"type": "string", "enum": ["wav", "mp3", "opus", "flac", "aac", "pcm"]},
        "speed": {"type": "number"},
        "stream_format": {"type": "string", "enum": ["audio", "sse"]},
        "instructions": {"type": "string"},
    },
    "required": ["input"],
}
OK = {"200": {"description": "ok"}}
OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "lingxi tts", "version": "0.1.0"},
    "paths": {
        "/health": {"get": {"responses": OK}},
        "/styles": {"get": {"responses": OK}},
        "/v1/audio/voices": {"get": {"responses": OK}},
        "/v1/audio/models": {"get": {"responses": OK}},
        "/v1/models": {"get": {"responses": OK}},
        "/synthesize": {
            "post": {
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {"schema": FORM},
                        "application/x-www-form-urlencoded": {"schema": FORM},
                    },
                },
                "responses": OK,
            }
        },
        "/v1/audio/speech": {
            "post": {
                "requestBody": {"required": True, "content": {"application/json": {"schema": SPEECH}}},
                "responses": OK,
            }
        },
    },
}


def test_no_tts_request_gets_a_5xx_or_no_answer(espeak_server):
    with httpx.Client(base_url=espeak_server.url, timeout=60) as client:
        findings = fuzz(OPENAPI, lambda request: client.request(**request))
    print(findings.report())
    assert findings.problems == [], "\n".join(findings.problems)
