"""The seed API against the real llm and embedding services."""

from __future__ import annotations

import itertools

import httpx
import numpy as np
import pytest

from tests.opro.conftest import Opro, data, error

SMOL = "smollm2:135m"


def cosine_distances(embedding_url: str, texts: list[str]) -> list[float]:
    body = httpx.post(f"{embedding_url}/v1/embeddings", json={"input": texts}, timeout=60).json()
    vectors = np.array([row["embedding"] for row in sorted(body["data"], key=lambda r: r["index"])])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [1.0 - float(vectors[i] @ vectors[j]) for i, j in itertools.combinations(range(len(texts)), 2)]


@pytest.fixture(scope="module")
def first_round(client: httpx.Client) -> dict:
    return data(client.post("/query", json={"query": "How do I choose a good apple at the market?"}))


def test_health_and_models_answer_in_the_envelope(client: httpx.Client) -> None:
    assert data(client.get("/health")) == {"status": "ok"}
    models = data(client.get("/models"))["models"]
    assert SMOL in models
    assert not [name for name in models if "embed" in name.lower() or "rerank" in name.lower()]


def test_query_creates_a_session_with_at_most_five_diverse_candidates(
    client: httpx.Client, first_round: dict, embedding_service: str, opro: Opro
) -> None:
    assert first_round["round"] == 0
    candidates = first_round["candidates"]
    assert 1 <= len(candidates) <= 5
    assert len({c.strip().lower() for c in candidates}) == len(candidates)
    assert all(isinstance(c, str) and c.strip() for c in candidates)
    if len(candidates) > 1:  # float noise between batches of different size: 1e-4 tolerance
        assert min(cosine_distances(embedding_service, candidates)) > opro.settings.cluster_threshold - 1e-4
    detail = data(client.get(f"/session/{first_round['session_id']}"))
    assert detail["round"] == 1
    assert detail["original_query"] == "How do I choose a good apple at the market?"
    assert detail["candidates"] == candidates
    assert detail["selected_prompt"] is None
    for key in ("user_feedback", "rejected", "history"):
        assert detail[key] == []


def test_rounds_count_and_rejected_candidates_are_never_offered_again(client: httpx.Client) -> None:
    round0 = data(client.post("/query", json={"query": "我想买苹果"}))
    sid = round0["session_id"]
    assert round0["round"] == 0
    round1 = data(client.post("/next", json={"session_id": sid}))
    assert round1["session_id"] == sid and round1["round"] == 1
    assert not set(round1["candidates"]) & set(round0["candidates"])
    shown = round0["candidates"] + round1["candidates"]
    rejected = shown[0]
    round2 = data(client.post("/reject", json={"session_id": sid, "candidate": rejected, "reason": "太笼统"}))
    assert round2 == {"session_id": sid, "round": 2, "candidates": round2["candidates"]}
    assert rejected not in round2["candidates"]
    assert not set(round2["candidates"]) & set(shown)
    final = data(client.post("/next", json={"session_id": sid}))  # MAX_ROUNDS = 3 reached
    assert final["final"] is True and isinstance(final["answer"], str)
    detail = data(client.get(f"/session/{sid}"))
    assert detail["round"] == 3
    assert detail["rejected"] == [rejected]
    assert detail["rejections"][0]["reason"] == "太笼统"
    assert [r["round"] for r in detail["rounds"]] == [0, 1, 2]


def test_message_select_and_query_from_message_follow_the_seed(client: httpx.Client, first_round: dict) -> None:
    sid = first_round["session_id"]
    assert data(client.post("/set_model", json={"session_id": sid, "model_name": SMOL})) == {
        "session_id": sid,
        "model_name": SMOL,
    }
    chat = data(client.post("/message", json={"session_id": sid, "message": "Which ones are sweetest?"}))
    assert chat["session_id"] == sid and isinstance(chat["answer"], str)
    assert chat["history"][-2] == {"role": "user", "content": "Which ones are sweetest?"}
    assert chat["history"][-1] == {"role": "assistant", "content": chat["answer"]}
    again = data(client.post("/query_from_message", json={"session_id": sid}))
    assert again["session_id"] == sid and again["round"] == 1
    assert not set(again["candidates"]) & set(first_round["candidates"])
    choice = (again["candidates"] or first_round["candidates"])[0]
    picked = data(client.post("/select", json={"session_id": sid, "choice": choice}))
    assert picked["prompt"] == choice and isinstance(picked["answer"], str)
    detail = data(client.get(f"/session/{sid}"))
    assert detail["selected_prompt"] == choice
    assert detail["user_feedback"] == [{"round": 1, "choice": choice}]
    assert detail["round"] == 2
    listed = {s["session_id"]: s for s in data(client.get("/sessions"))["sessions"]}
    assert {"session_id", "round", "selected_prompt", "original_query"} <= set(listed[sid])
    assert listed[sid]["selected_prompt"] == choice and listed[sid]["round"] == 2


def test_answer_answers_directly_and_offers_candidates(client: httpx.Client) -> None:
    body = data(client.post("/answer", json={"query": "What is the capital of France?"}))
    assert set(body) == {"session_id", "answer", "candidates"}
    assert isinstance(body["answer"], str) and 0 < len(body["candidates"]) <= 5
    detail = data(client.get(f"/session/{body['session_id']}"))
    assert detail["history"][1] == {"role": "assistant", "content": body["answer"]}
    assert detail["round"] == 1


def test_set_model_refuses_a_model_the_backend_does_not_serve(client: httpx.Client, first_round: dict) -> None:
    sid = first_round["session_id"]
    reply = client.post("/set_model", json={"session_id": sid, "model_name": "qwen3:8b"})
    assert error(reply, 400) == "model not available: qwen3:8b"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/session/no-such-session", None),
        ("POST", "/query_from_message", {"session_id": "no-such-session"}),
        ("POST", "/select", {"session_id": "no-such-session", "choice": "x y z"}),
        ("POST", "/reject", {"session_id": "no-such-session", "candidate": "x y z"}),
        ("POST", "/next", {"session_id": "no-such-session"}),
        ("POST", "/message", {"session_id": "no-such-session", "message": "hi"}),
        ("POST", "/set_model", {"session_id": "no-such-session", "model_name": SMOL}),
    ],
)
def test_unknown_sessions_are_a_404_envelope(client: httpx.Client, method: str, path: str, body: dict | None) -> None:
    assert error(client.request(method, path, json=body), 404) == "session not found"


@pytest.mark.parametrize(
    ("path", "body", "missing"),
    [
        ("/query", {}, "query"),
        ("/answer", {"q": "x"}, "query"),
        ("/select", {"session_id": "s"}, "choice"),
        ("/reject", {"candidate": "c"}, "session_id"),
        ("/message", {"session_id": "s"}, "message"),
        ("/set_model", {"session_id": "s"}, "model_name"),
        ("/next", {}, "session_id"),
        ("/query_from_message", {"session_id": 3}, "session_id"),
    ],
)
def test_invalid_bodies_are_a_4xx_envelope_naming_the_field(
    client: httpx.Client, path: str, body: dict, missing: str
) -> None:
    assert missing in error(client.post(path, json=body), 422)


def test_other_errors_are_envelopes_too(client: httpx.Client, opro: Opro) -> None:
    headers = {"Content-Type": "application/json"}
    assert "JSON" in error(client.post("/query", content=b"{not json", headers=headers), 400)
    assert "empty" in error(client.post("/query", json={"query": "   "}), 400)
    too_long = "x" * (opro.settings.max_query_chars + 1)
    assert "longer" in error(client.post("/query", json={"query": too_long}), 400)
    assert "no route" in error(client.get("/no/such/route"), 404)
    error(client.put("/query", json={"query": "x"}), 405)


def test_an_unreachable_llm_is_a_502_envelope_and_health_says_so(
    embedding_service: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.conftest import free_port
    from tests.opro.conftest import serve, settings_for

    dead = f"http://127.0.0.1:{free_port()}"
    settings = settings_for(dead, embedding_service, tmp_path_factory.mktemp("dead-llm"))
    with serve(settings) as running, running.client() as http:
        assert "unreachable" in error(http.get("/health"), 503)
        assert "unreachable" in error(http.post("/query", json={"query": "hello there"}), 502)
        assert "unreachable" in error(http.get("/models"), 502)
