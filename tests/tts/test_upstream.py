"""The upstream engine against a real OpenAI-compatible server: the espeak tts service on a port."""

from __future__ import annotations

import pytest

from tests.conftest import free_port, wait_for_health
from tests.tts.conftest import wav_audio
from tts.app import create_app
from tts.config import Engine, Settings


@pytest.fixture(scope="module")
def upstream_client(espeak_server):
    settings = Settings(
        engine=Engine.upstream, upstream_url=f"{espeak_server.url}/v1", upstream_voices="style1,style2,ghost"
    )
    app = create_app(settings)
    wait_for_health(app.test_client())
    return app.test_client()


def test_upstream_engine_synthesises_through_the_upstream(upstream_client, client):
    form = {"text": "Hello. Through the upstream.", "style": "style2"}
    through = upstream_client.post("/synthesize", data=form, content_type="multipart/form-data")
    direct = client.post("/synthesize", data=form, content_type="multipart/form-data")
    assert through.status_code == 200
    assert wav_audio(through.data).seconds == pytest.approx(wav_audio(direct.data).seconds, abs=0.05)
    assert upstream_client.get("/styles").get_json()["styles"] == ["style1", "style2", "ghost"]


def test_upstream_engine_passes_the_upstreams_4xx_through(upstream_client):
    response = upstream_client.post(
        "/synthesize", data={"text": "hi", "style": "ghost"}, content_type="multipart/form-data"
    )
    assert response.status_code == 400


def test_upstream_engine_answers_502_when_the_upstream_is_down():
    app = create_app(Settings(engine=Engine.upstream, upstream_url=f"http://127.0.0.1:{free_port()}/v1"))
    wait_for_health(app.test_client())
    response = app.test_client().post("/synthesize", data={"text": "hi"}, content_type="multipart/form-data")
    assert response.status_code == 502 and "unreachable" in response.get_json()["error"]["message"]


def test_upstream_engine_without_a_url_is_not_configured():
    app = create_app(Settings(engine=Engine.upstream))
    client = app.test_client()
    health = wait_for_health(client, settled=True)
    assert health.status_code == 503 and "TTS_UPSTREAM_URL" in health.get_json()["detail"]
    response = client.post("/synthesize", data={"text": "hi"}, content_type="multipart/form-data")
    assert response.status_code == 503
