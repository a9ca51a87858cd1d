"""The openai engine against a local server speaking OpenAI's vision chat protocol."""

import base64
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import free_port, image_bytes
from tests.vlm.conftest import UPSTREAM_MODEL, data_url, openai_settings
from vlm.app import create_app


def sent_image(received: dict) -> tuple[str, Image.Image]:
    """The prompt and the image the upstream received in its one user message."""
    content = received["body"]["messages"][0]["content"]
    text = next(part["text"] for part in content if part["type"] == "text")
    url = next(part["image_url"]["url"] for part in content if part["type"] == "image_url")
    assert url.startswith("data:image/jpeg;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    image.load()
    return text, image


def test_vlm_openai_describe_relays_the_upstream_answer_in_the_seed_shape(openai_client, upstream):
    payload = {"text": "描述这幅图", "image_url": data_url(image_bytes("red", (64, 48)))}
    response = openai_client.post("/describe_image", json=payload)
    assert response.status_code == 200
    assert response.json() == {"result": "这是一张红色的图片。"}


def test_vlm_openai_sends_the_image_as_a_data_url_with_the_prompt(openai_client, upstream):
    payload = {"text": "描述这幅图", "image_url": data_url(image_bytes((200, 10, 10), (64, 48))), "max_tokens": 77}
    assert openai_client.post("/describe_image", json=payload).status_code == 200
    [received] = upstream.received
    text, image = sent_image(received)
    assert text == "描述这幅图"
    assert image.size == (64, 48) and image.mode == "RGB"
    red, green, blue = image.getpixel((32, 24))
    assert red > 180 and green < 40 and blue < 40
    body = received["body"]
    assert body["model"] == UPSTREAM_MODEL and body["max_tokens"] == 77 and body["stream"] is False
    assert "temperature" not in body
    assert received["authorization"] == "Bearer sk-upstream"


def test_vlm_openai_passes_temperature_and_model_and_defaults_the_prompt(openai_client, upstream):
    payload = {"image_base64": base64.b64encode(image_bytes()).decode(), "temperature": 0.3, "model": "other-vl"}
    assert openai_client.post("/describe_image", json=payload).status_code == 200
    body = upstream.received[0]["body"]
    assert body["temperature"] == 0.3 and body["model"] == "other-vl"
    text, _ = sent_image(upstream.received[0])
    assert text == "Describe this image in detail."


def test_vlm_openai_stream_relays_the_upstream_chunks_as_plain_text(openai_client, upstream):
    payload = {"text": "描述这幅图", "image_url": data_url(image_bytes())}
    with openai_client.stream("POST", "/describe_image_stream", json=payload) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        text = "".join(response.iter_text())
    assert text == "这是一张红色的图片。"
    assert upstream.received[0]["body"]["stream"] is True
    assert sent_image(upstream.received[0])[0] == "描述这幅图"


def test_vlm_openai_stream_error_midway_is_reported_in_band(openai_client, upstream):
    upstream.break_stream_after = 2
    response = openai_client.post("/describe_image_stream", json={"image_url": data_url(image_bytes())})
    assert response.status_code == 200
    assert response.text.startswith("这是一张")
    assert response.text.endswith("[error: upstream: engine crashed]")


@pytest.mark.parametrize("path", ["/describe_image", "/describe_image_stream"])
def test_vlm_openai_upstream_server_error_is_a_502(openai_client, upstream, path):
    upstream.status, upstream.error = 500, "CUDA error: device-side assert"
    response = openai_client.post(path, json={"image_url": data_url(image_bytes())})
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "upstream_error"
    assert "CUDA error" in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/describe_image", "/describe_image_stream"])
def test_vlm_openai_upstream_client_error_passes_through(openai_client, upstream, path):
    upstream.status, upstream.error = 400, "max_tokens is too large for this model"
    response = openai_client.post(path, json={"image_url": data_url(image_bytes())})
    assert response.status_code == 400
    assert "max_tokens is too large" in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/describe_image", "/describe_image_stream"])
def test_vlm_openai_slow_upstream_is_a_504(openai_client, upstream, path):
    upstream.delay_s = 1.5  # the app's upstream_timeout_s is 1.0
    response = openai_client.post(path, json={"image_url": data_url(image_bytes())})
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "upstream_timeout"


def test_vlm_openai_reply_that_is_not_a_completion_is_a_502(openai_client, upstream):
    upstream.malformed = True
    response = openai_client.post("/describe_image", json={"image_url": data_url(image_bytes())})
    assert response.status_code == 502
    assert "not a chat completion" in response.json()["error"]["message"]


def test_vlm_openai_health_is_ok_when_the_upstream_answers(openai_client, upstream):
    response = openai_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "engine": "openai",
        "model": UPSTREAM_MODEL,
        "upstream": upstream.url,
    }


def test_vlm_openai_unreachable_upstream_is_502_and_unhealthy():
    settings = openai_settings(f"http://127.0.0.1:{free_port()}/v1")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "error" and "unreachable" in health.json()["detail"]
        response = client.post("/describe_image", json={"image_url": data_url(image_bytes())})
        assert response.status_code == 502
        assert "could not reach the vision upstream" in response.json()["error"]["message"]
