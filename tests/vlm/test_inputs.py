"""Every way a client sends an image, and every way it can be wrong: 4xx with a message, never a 500.

These run on the openai engine (cheap, and the upstream shows exactly which image arrived)."""

import base64
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import image_bytes, reply
from tests.vlm.conftest import data_url, openai_settings
from tests.vlm.test_openai_engine import sent_image
from vlm.app import create_app


@pytest.fixture(scope="module")
def limited_client(upstream_server):
    settings = openai_settings(
        upstream_server.url, max_image_bytes=50_000, max_image_pixels=1_000_000, image_max_side=32, max_text_chars=50
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def error_of(response, status):
    assert response.status_code == status, response.text
    return response.json()["error"]["message"]


def test_vlm_accepts_a_multipart_upload_with_text(openai_client, upstream):
    files = {"image": ("cat.png", image_bytes("blue", (40, 30)), "image/png")}
    response = openai_client.post("/describe_image", files=files, data={"text": "这是什么?", "max_tokens": "9"})
    assert response.status_code == 200 and response.json()["result"]
    text, image = sent_image(upstream.received[0])
    assert text == "这是什么?" and image.size == (40, 30)
    assert upstream.received[0]["body"]["max_tokens"] == 9


def test_vlm_says_how_to_upload_when_image_is_a_plain_form_field(openai_client, upstream):
    message = error_of(openai_client.post("/describe_image", data={"image": "picture.jpg", "text": "hi"}), 400)
    assert "image=@" in message
    assert upstream.received == []


def test_vlm_accepts_image_base64_raw_and_as_data_url(openai_client, upstream):
    raw = base64.b64encode(image_bytes("green", (20, 20), fmt="JPEG")).decode()
    assert openai_client.post("/describe_image", json={"image_base64": raw}).status_code == 200
    wrapped = "\n".join(raw[i : i + 76] for i in range(0, len(raw), 76))  # as `base64` prints it
    assert openai_client.post("/describe_image", json={"image_base64": wrapped}).status_code == 200
    assert (
        openai_client.post("/describe_image", json={"image_base64": f"data:image/jpeg;base64,{raw}"}).status_code == 200
    )
    assert [sent_image(r)[1].size for r in upstream.received] == [(20, 20)] * 3


def test_vlm_fetches_an_allowlisted_url(upstream, upstream_server, local_server):
    local_server.routes["/cat.png"] = reply(200, image_bytes("red", (30, 20)), "image/png")
    settings = openai_settings(upstream_server.url, allowed_hosts=[local_server.netloc])
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.post(
            "/describe_image", json={"text": "描述这幅图", "image_url": local_server.url("/cat.png")}
        )
        assert response.status_code == 200
        assert sent_image(upstream.received[0])[1].size == (30, 20)
        local_server.routes["/page"] = reply(200, b"<html>hello</html>", "text/html")
        message = error_of(client.post("/describe_image", json={"image_url": local_server.url("/page")}), 415)
        assert "not a recognised image" in message
        message = error_of(client.post("/describe_image", json={"image_url": local_server.url("/missing")}), 422)
        assert "404" in message


def test_vlm_refuses_a_private_url_that_is_not_allowlisted(openai_client, local_server, upstream):
    local_server.routes["/cat.png"] = reply(200, image_bytes(), "image/png")
    message = error_of(openai_client.post("/describe_image", json={"image_url": local_server.url("/cat.png")}), 400)
    assert "non-public address" in message and "ALLOWED_HOSTS" in message
    assert local_server.seen_hosts == [] and upstream.received == []


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        ({"text": "hi"}, 400, "no image"),
        ({"image_url": "data:image/png;base64,AAAA", "image_base64": "AAAA"}, 400, "send one image"),
        ({"image_base64": "not base64 at all!"}, 400, "not valid base64"),
        ({"image_url": "data:text/plain;base64,aGVsbG8="}, 415, "not an image"),
        ({"image_url": "data:image/png,rawbytes"}, 400, "base64"),
        ({"image_url": "ftp://example.com/cat.png"}, 400, "only http and https"),
        ({"image_base64": base64.b64encode(b"hello, not an image").decode()}, 415, "not a recognised image"),
        ({"image_base64": base64.b64encode(image_bytes()[:60]).decode()}, 400, "corrupt or truncated"),
        ({"image_base64": ""}, 400, "empty"),
        ({"image_url": data_url(image_bytes()), "max_tokens": 100_000}, 400, "max_tokens"),
        ({"image_url": data_url(image_bytes()), "max_tokens": 0}, 422, "max_tokens"),
        ({"image_url": data_url(image_bytes()), "temperature": 5}, 422, "temperature"),
        ({"image_url": 42}, 422, "image_url"),
    ],
)
def test_vlm_rejects_bad_input_with_a_clear_4xx(openai_client, upstream, payload, status, words):
    message = error_of(openai_client.post("/describe_image", json=payload), status)
    assert words in message
    assert upstream.received == []


@pytest.mark.parametrize("path", ["/describe_image", "/describe_image_stream"])
def test_vlm_rejects_non_json_bodies(openai_client, path):
    assert "not valid JSON" in error_of(
        openai_client.post(path, content=b"{oops", headers={"content-type": "application/json"}), 400
    )
    assert "must be an object" in error_of(openai_client.post(path, json=["a"]), 400)
    assert "multipart" in error_of(openai_client.post(path, content=b"x", headers={"content-type": "text/plain"}), 415)


def test_vlm_rejects_an_image_over_the_byte_limit(limited_client, upstream):
    import numpy as np

    noise = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")  # ~120 kB: the limit is 50 kB
    message = error_of(limited_client.post("/describe_image", json={"image_url": data_url(buffer.getvalue())}), 413)
    assert "limit" in message
    files = {"image": ("noise.png", buffer.getvalue(), "image/png")}
    assert "larger than" in error_of(limited_client.post("/describe_image", files=files), 413)


def test_vlm_rejects_an_image_over_the_pixel_limit(limited_client):
    big = image_bytes("white", (1200, 1000))  # a flat PNG: few bytes, 1.2 M pixels
    assert "pixels" in error_of(limited_client.post("/describe_image", json={"image_url": data_url(big)}), 413)


def test_vlm_rejects_a_too_long_prompt(limited_client):
    payload = {"text": "x" * 51, "image_url": data_url(image_bytes())}
    assert "limit is 50" in error_of(limited_client.post("/describe_image", json=payload), 400)


def test_vlm_downscales_large_images_to_the_max_side(limited_client, upstream):
    response = limited_client.post("/describe_image", json={"image_url": data_url(image_bytes("red", (320, 160)))})
    assert response.status_code == 200
    assert sent_image(upstream.received[0])[1].size == (32, 16)


@pytest.mark.parametrize(
    ("mode", "color", "fmt"),
    [("RGBA", (255, 0, 0, 0), "PNG"), ("CMYK", (0, 255, 255, 0), "JPEG"), ("P", 3, "GIF"), ("L", 128, "PNG")],
)
def test_vlm_normalises_alpha_cmyk_palette_and_grey_images_to_rgb(openai_client, upstream, mode, color, fmt):
    payload = {"image_base64": base64.b64encode(image_bytes(color, (16, 16), fmt=fmt, mode=mode)).decode()}
    assert openai_client.post("/describe_image", json=payload).status_code == 200
    image = sent_image(upstream.received[0])[1]
    assert image.mode == "RGB" and image.size == (16, 16)
    if mode == "RGBA":  # fully transparent → the white background
        assert min(image.getpixel((8, 8))) > 240


def test_vlm_takes_the_first_frame_of_an_animated_gif(openai_client, upstream):
    frames = [Image.new("RGB", (24, 24), color) for color in ("red", "blue", "green")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    response = openai_client.post("/describe_image", json={"image_url": data_url(buffer.getvalue(), "image/gif")})
    assert response.status_code == 200
    red, green, blue = sent_image(upstream.received[0])[1].getpixel((12, 12))
    assert red > 200 and green < 60 and blue < 60
