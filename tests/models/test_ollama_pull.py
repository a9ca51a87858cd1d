"""Ollama's ``/api/pull`` and ``/api/delete`` on the llm, through the ``ollama`` SDK, from local servers
speaking the Hugging Face and ModelScope APIs and serving the real SmolLM2 GGUF; the pulled model then
answers a chat on the llamacpp engine without a restart."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import pytest

from llm.app import create_app
from llm.config import Settings
from tests.llm.conftest import NO_SIBLINGS, SMOL, Running, serve
from tests.models.hub_servers import Hub, smol_gguf
from tests.models.hub_servers import serve as serve_hub

REPO = "acme/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
NAME = f"hf.co/{REPO}:Q4_1"
QWEN_FILE = "qwen2.5-0.5b-instruct-q4_k_m.gguf"  # the familiar name's file, holding SmolLM2 here


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hub") / FILE
    shutil.copyfile(smol_gguf(), path)
    path.with_name("README.md").write_text("# tiny\n")
    return path


@pytest.fixture(scope="module")
def hub(gguf: Path) -> Iterator[Hub]:
    server = Hub()
    server.add(REPO, FILE, gguf)
    server.add(REPO, "README.md", gguf.with_name("README.md"))
    server.add("Qwen/Qwen2.5-0.5B-Instruct-GGUF", QWEN_FILE, gguf)
    with serve_hub(server):
        yield server


@pytest.fixture(scope="module")
def llm(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    models = tmp_path_factory.mktemp("models")
    settings = Settings(embedded_model=SMOL, max_tokens=24, pulled_models_dir=models, **NO_SIBLINGS)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HF_ENDPOINT", hub.url)
        env.setenv("MODELSCOPE_ENDPOINT", hub.url)
        env.delenv("LINGXI_MODEL_SOURCES", raising=False)
        with serve(create_app(settings), ready_timeout_s=240) as running:
            yield running


def client(llm: Running) -> ollama.Client:
    return ollama.Client(host=f"{llm.url}/ollama", timeout=240)


def served(llm: Running) -> tuple[list[str], list[str]]:
    tags = [m.model for m in client(llm).list().models]
    ids = [row["id"] for row in httpx.get(f"{llm.url}/v1/models").json()["data"]]
    return tags, ids


def test_pull_streams_ollamas_progress_then_the_model_chats_and_delete_removes_it(llm: Running, gguf: Path):
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    parts = list(client(llm).pull(NAME, stream=True))
    statuses = [part.status for part in parts]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    progress = [part for part in parts if part.digest]
    assert progress and all(part.status == f"pulling {digest[:12]}" for part in progress)
    assert {part.digest for part in progress} == {f"sha256:{digest}"}
    assert {part.total for part in progress} == {gguf.stat().st_size}
    completed = [part.completed or 0 for part in progress]
    assert completed == sorted(completed) and completed[-1] == gguf.stat().st_size

    tags, ids = served(llm)
    assert NAME in tags and NAME in ids
    listed = next(m for m in client(llm).list().models if m.model == NAME)
    assert listed.size == gguf.stat().st_size and listed.digest == digest
    pulled = llm.app.state.pulled_index.store.repo_dir(REPO)
    assert sorted(p.name for p in pulled.iterdir()) == [FILE]  # the GGUF of that quantisation only

    answer = client(llm).chat(model=NAME, messages=[{"role": "user", "content": "Say hello."}])
    assert answer.message.content.strip()
    assert answer.model == NAME

    assert client(llm).pull(NAME).status == "success"  # present already: nothing to fetch
    again = create_app(Settings(embedded_model=SMOL, pulled_models_dir=pulled.parent.parent, **NO_SIBLINGS))
    assert NAME in again.state.models.routes  # a restart serves it again

    client(llm).delete(NAME)
    tags, ids = served(llm)
    assert NAME not in tags and NAME not in ids and not pulled.exists()
    with pytest.raises(ollama.ResponseError) as caught:
        client(llm).chat(model=NAME, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 404


def test_a_familiar_name_pulls_from_modelscope_without_streaming(llm: Running, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LINGXI_MODEL_SOURCES", "modelscope")
    assert client(llm).pull("qwen2.5:0.5b", stream=False).status == "success"
    same_file = "hf.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M"
    assert client(llm).pull(same_file, stream=False).status == "success"
    assert {"qwen2.5:0.5b", same_file} <= set(served(llm)[0])
    client(llm).delete("qwen2.5:0.5b")
    assert "qwen2.5:0.5b" not in served(llm)[0]
    answer = client(llm).chat(model=same_file, messages=[{"role": "user", "content": "你好"}])
    assert answer.message.content.strip()  # the other name's file stayed
    client(llm).delete(same_file)
    assert same_file not in served(llm)[0]


def test_the_hub_token_stays_out_of_errors(llm: Running, monkeypatch: pytest.MonkeyPatch):
    token = "hf_SecretPullToken987654321"
    monkeypatch.setenv("HF_TOKEN", token)
    with pytest.raises(ollama.ResponseError) as caught:
        client(llm).pull("hf.co/acme/private-GGUF:Q4_K_M")
    assert caught.value.status_code == 404 and token not in caught.value.error


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "hf.co/../../etc", "hf.co/http://evil.example/x", "https://evil.example/a/b", "llama3.2"],
)
def test_bad_names_are_400_in_ollamas_shape(llm: Running, hub: Hub, name: str):
    before = len(hub.requests)
    for stream in (True, False):
        response = httpx.post(f"{llm.url}/ollama/api/pull", json={"model": name, "stream": stream})
        assert response.status_code == 400 and isinstance(response.json()["error"], str)
    assert len(hub.requests) == before  # no hub was asked


def test_a_repo_the_hubs_lack_is_404_and_a_missing_quantisation_names_the_ones_there(llm: Running):
    with pytest.raises(ollama.ResponseError) as caught:
        list(client(llm).pull("hf.co/acme/missing-GGUF:Q4_K_M", stream=True))
    assert caught.value.status_code == 404 and "acme/missing-GGUF" in caught.value.error
    with pytest.raises(ollama.ResponseError) as caught:
        client(llm).pull(f"hf.co/{REPO}:Q8_0")
    assert caught.value.status_code == 404 and "Q4_1" in caught.value.error


def test_delete_of_a_configured_model_is_still_refused(llm: Running):
    with pytest.raises(ollama.ResponseError) as caught:
        client(llm).delete(SMOL)
    assert caught.value.status_code == 400
    assert SMOL in served(llm)[0]


def test_a_client_that_hangs_up_does_not_stop_the_pull_and_a_second_one_joins_it(llm: Running, hub: Hub, gguf: Path):
    hub.paused.clear()
    hub.resume.clear()
    hub.pause_at = gguf.stat().st_size // 2
    try:
        with httpx.stream("POST", f"{llm.url}/ollama/api/pull", json={"model": NAME}, timeout=60) as first:
            assert first.status_code == 200
            assert json.loads(next(first.iter_lines()))["status"] == "pulling manifest"
            assert hub.paused.wait(60)
        # the first client is gone; a second pull of the same name follows the same download
        with httpx.stream("POST", f"{llm.url}/ollama/api/pull", json={"model": NAME}, timeout=120) as second:
            hub.resume.set()
            lines = [json.loads(line) for line in second.iter_lines() if line]
    finally:
        hub.pause_at = None
        hub.resume.set()
    assert lines[0]["status"] == "pulling manifest" and lines[-1]["status"] == "success"
    assert NAME in served(llm)[0]
    client(llm).delete(NAME)
