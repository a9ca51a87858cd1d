"""ONNX Runtime against torch for sentence-transformers models and the cross-encoder: the same vectors, the
same rerank order and scores, the same usage, for English and Chinese; image models stay on torch."""

import os

import numpy as np
import pytest

from embedding.config import Backend, Engine, Settings

TEXTS = [
    "How do I reset my password?",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "今天天气很好，我们去公园散步吧。",
    "如何在 Python 里读取一个 JSON 文件？",
    "a",
]


def vectors(served, texts: list[str]) -> tuple[np.ndarray, int]:
    response = served.http.post("/v1/embeddings", json={"input": texts})
    assert response.status_code == 200, response.text
    body = response.json()
    return np.asarray([row["embedding"] for row in body["data"]], dtype=np.float32), body["usage"]["prompt_tokens"]


def test_onnx_is_the_cpu_default_and_says_so(minilm, minilm_onnx, minilm_torch):
    assert minilm.http.get("/health").json()["backend"] == "onnx"  # auto on a CPU
    assert minilm_onnx.http.get("/health").json()["backend"] == "onnx"
    health = minilm_torch.http.get("/health").json()
    assert health["backend"] == "torch" and health["device"] == "cpu"


def test_onnx_vectors_equal_torchs_in_english_and_chinese(minilm_onnx, minilm_torch):
    onnx, onnx_tokens = vectors(minilm_onnx, TEXTS)
    torch, torch_tokens = vectors(minilm_torch, TEXTS)
    assert np.min(np.sum(onnx * torch, axis=1)) > 0.999
    assert onnx_tokens == torch_tokens
    one_by_one = np.concatenate([vectors(minilm_onnx, [t])[0] for t in TEXTS])  # other padding, same vectors
    assert np.min(np.sum(one_by_one * torch, axis=1)) > 0.999


def test_onnx_usage_counts_what_the_model_saw(minilm_onnx):
    assert vectors(minilm_onnx, ["hello world"])[1] == 4  # [CLS] hello world [SEP]
    assert vectors(minilm_onnx, ["word " * 300, "hi"])[1] == 256 + 3  # MiniLM's limit, then [CLS] hi [SEP]


def test_onnx_rerank_scores_and_order_equal_torchs(minilm_onnx, minilm_torch):
    body = {"query": "如何学习 Python", "documents": ["Python 入门教程", "java guide", "今天天气很好", "python flask"]}
    onnx = minilm_onnx.http.post("/v1/rerank", json=body).json()
    torch = minilm_torch.http.post("/v1/rerank", json=body).json()
    assert onnx["method"] == torch["method"] == "cross-encoder"
    assert [r["index"] for r in onnx["results"]] == [r["index"] for r in torch["results"]]
    onnx_scores = [r["relevance_score"] for r in onnx["results"]]
    assert onnx_scores == pytest.approx([r["relevance_score"] for r in torch["results"]], abs=1e-5)
    assert onnx["usage"] == torch["usage"] and onnx["usage"]["total_tokens"] > 0


def test_the_export_is_kept_and_reused(minilm_onnx, onnx_dir):
    from embedding.engines.sentence_transformers import SentenceTransformersEngine

    files = sorted(onnx_dir.glob("*.onnx"))
    assert len(files) >= 2  # the embedding model and the reranker
    stamps = [f.stat().st_mtime_ns for f in files]
    settings = Settings(_env_file=None, engine=Engine.sentence_transformers, device="cpu", onnx_dir=onnx_dir)
    engine = SentenceTransformersEngine(settings.model_copy(update={"backend": Backend.onnx}))
    engine._load()
    assert engine.onnx is not None and engine.onnx.path in files
    assert [f.stat().st_mtime_ns for f in sorted(onnx_dir.glob("*.onnx"))] == stamps


def test_an_image_model_stays_on_torch(clip):
    health = clip.http.get("/health").json()
    assert health["backend"] == "torch" and health["supports_images"] is True


def test_onnx_runtime_runs_on_every_core_unless_told_otherwise(onnx_dir, monkeypatch):
    from embedding.engines.sentence_transformers import SentenceTransformersEngine

    def session_threads() -> int:
        settings = Settings(
            _env_file=None, engine=Engine.sentence_transformers, backend=Backend.onnx, onnx_dir=onnx_dir
        )
        engine = SentenceTransformersEngine(settings)
        engine._load()
        assert engine.onnx is not None
        return engine.onnx.session.get_session_options().intra_op_num_threads

    assert session_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("EMBEDDING_CPU_THREADS", "1")
    assert session_threads() == 1
    monkeypatch.setenv("EMBEDDING_CPU_THREADS", "-1")
    with pytest.raises(ValueError, match="cpu_threads"):
        Settings(_env_file=None)
