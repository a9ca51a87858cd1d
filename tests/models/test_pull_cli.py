"""``lingxi models pull|list|rm`` through the real huggingface_hub and modelscope clients, against local
servers that speak each hub's HTTP API."""

from __future__ import annotations

import hashlib
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services import cli
from services.models import store as store_module
from tests.models.hub_servers import Hub, serve

REPO = "acme/tiny-GGUF"
FILE = "tiny-Q4_K_M.gguf"
TOKEN = "hf_TopSecretToken123456"


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("blob") / FILE
    path.write_bytes(os.urandom(6 * 1024 * 1024))
    return path


@pytest.fixture
def hub(payload: Path) -> Iterator[Hub]:
    server = Hub()
    server.add(REPO, FILE, payload)
    server.add(REPO, "config.json", payload.with_name("config.json"))
    with serve(server):
        yield server


@pytest.fixture(autouse=True)
def config_json(payload: Path) -> None:
    payload.with_name("config.json").write_text('{"model_type": "llama"}')


@pytest.fixture
def env(tmp_path: Path, hub: Hub, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "LINGXI_MODELS_DIR": str(tmp_path / "models"),
        "HF_ENDPOINT": hub.url,
        "MODELSCOPE_ENDPOINT": hub.url,
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("LINGXI_MODEL_SOURCES", raising=False)
    return values


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_cli(*args: str) -> int:
    return cli.main(["models", *args])


@pytest.mark.parametrize("source", ["hf", "modelscope"])
def test_pull_list_rm(source: str, env: dict[str, str], hub: Hub, payload: Path, capsys: pytest.CaptureFixture[str]):
    assert run_cli("pull", REPO, "--source", source) == 0
    pulled = Path(env["LINGXI_MODELS_DIR"], REPO)
    assert sha256(pulled / FILE) == sha256(payload)
    assert (pulled / "config.json").read_text() == '{"model_type": "llama"}'
    assert not list(Path(env["LINGXI_MODELS_DIR"], ".staging").rglob("*.part"))
    prefix = "/api/models/" if source == "hf" else "/api/v1/models/"
    assert all(prefix in r or "/resolve/" in r or "/cdn/" in r for r in hub.requests if source == "hf")
    assert any(prefix in r for r in hub.requests)

    assert run_cli("list") == 0
    listing = capsys.readouterr().out
    assert REPO in listing and "2" in listing.split(REPO)[1]

    assert run_cli("rm", REPO) == 0
    assert not pulled.exists()
    assert run_cli("rm", REPO) == 1


def test_a_gguf_name_pulls_only_that_quantisation(env: dict[str, str], hub: Hub, payload: Path):
    assert run_cli("pull", f"hf.co/{REPO}:q4_k_m") == 0
    assert sorted(p.name for p in Path(env["LINGXI_MODELS_DIR"], REPO).iterdir()) == [FILE]
    assert run_cli("pull", f"hf.co/{REPO}:Q8_0") == 1


def test_falls_back_to_modelscope_when_hugging_face_lacks_the_repo(
    env: dict[str, str], hub: Hub, payload: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    with serve(Hub()) as empty_hf:
        monkeypatch.setenv("HF_ENDPOINT", empty_hf.url)
        assert run_cli("pull", REPO, "--include", "*.gguf") == 0
        assert any("/api/models/" in r for r in empty_hf.requests)
    assert any(r.startswith("GET /api/v1/models/") for r in hub.requests)
    assert sha256(Path(env["LINGXI_MODELS_DIR"], REPO, FILE)) == sha256(payload)


def test_only_the_configured_source_is_asked(env: dict[str, str], hub: Hub, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LINGXI_MODEL_SOURCES", "modelscope")
    assert run_cli("pull", REPO) == 0
    assert not any("/api/models/" in r or "/resolve/" in r for r in hub.requests)


@pytest.mark.parametrize("source", ["hf", "modelscope"])
def test_a_corrupted_download_is_rejected_and_not_published(
    source: str, env: dict[str, str], hub: Hub, capsys: pytest.CaptureFixture[str]
):
    hub.corrupt = True
    assert run_cli("pull", REPO, "--source", source, "--include", "*.gguf") == 1
    assert "sha256" in capsys.readouterr().err
    models = Path(env["LINGXI_MODELS_DIR"])
    assert not (models / REPO / FILE).exists()
    assert not list(models.rglob("*.part"))  # nothing left to resume from either


@pytest.mark.parametrize("source", ["hf", "modelscope"])
def test_an_interrupted_pull_resumes(source: str, env: dict[str, str], hub: Hub, payload: Path):
    size = payload.stat().st_size
    hub.pause_at = size // 2
    command = [sys.executable, "-m", "services.cli", "models", "pull", REPO, "--source", source, "--include", "*.gguf"]
    process = subprocess.Popen(command, env={**os.environ, **env}, stderr=subprocess.PIPE, text=True)
    assert hub.paused.wait(60), "the download never reached the pause"
    models = Path(env["LINGXI_MODELS_DIR"])
    deadline = time.monotonic() + 30
    while staged(models) < size // 2 - 1024 * 1024:  # the client has written what it received
        assert time.monotonic() < deadline, f"only {staged(models)} bytes written"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # Ctrl-C while half the file is on disk
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert not (models / REPO / FILE).exists()  # nothing where a service would load it
    hub.pause_at, hub.sent = None, 0
    hub.resume.set()
    assert run_cli("pull", REPO, "--source", source, "--include", "*.gguf") == 0
    assert sha256(models / REPO / FILE) == sha256(payload)
    assert hub.sent <= 0.55 * size, f"re-sent {hub.sent} of {size} bytes"


def staged(models: Path) -> int:
    return sum(p.stat().st_size for p in models.rglob("*.part"))


@pytest.mark.parametrize(
    "name",
    ["../etc", "acme/../../x", "http://evil.example/acme/x", "acme/x/y", "/abs/path", "acme/..", "hf.co/a/b:x/y"],
)
def test_bad_names_are_refused_before_any_request(
    name: str, env: dict[str, str], hub: Hub, capsys: pytest.CaptureFixture[str]
):
    assert run_cli("pull", name) == 2
    assert hub.requests == []
    assert "lingxi models:" in capsys.readouterr().err
    assert run_cli("rm", name) == (1 if name == "acme/x/y" else 2)  # a directory name, just not there


def test_the_token_goes_to_the_hub_only_and_never_into_messages(
    env: dict[str, str], hub: Hub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert run_cli("pull", REPO, "--source", "hf") == 0
    assert TOKEN in hub.tokens
    cdn = [i for i, r in enumerate(hub.requests) if "/cdn/" in r]
    assert cdn and len(hub.tokens) == len(hub.requests) - len(cdn)  # the CDN got no token
    assert run_cli("pull", "acme/missing", "--source", "hf") == 1
    captured = capsys.readouterr()
    assert "acme/missing" in captured.err
    assert TOKEN not in captured.out + captured.err


def test_refuses_when_the_disk_cannot_hold_it(
    env: dict[str, str], hub: Hub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr(store_module, "HEADROOM", 10**18)
    assert run_cli("pull", REPO, "--source", "hf") == 1
    assert "not enough disk space" in capsys.readouterr().err
    assert not any("/cdn/" in r for r in hub.requests)


def test_a_terminal_gets_a_progress_bar_and_a_pipe_does_not(env: dict[str, str], hub: Hub, payload: Path):
    command = [sys.executable, "-m", "services.cli", "models", "pull", REPO, "--source", "hf", "--include", "*.gguf"]
    main, terminal = pty.openpty()
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    drawn = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        drawn += chunk
    assert process.wait(60) == 0
    os.close(main)
    assert FILE.encode() in drawn and b"100%" in drawn and b"6.00M" in drawn  # name, percentage, size

    Path(env["LINGXI_MODELS_DIR"], REPO, FILE).unlink()
    piped = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0 and "%" not in piped.stderr
