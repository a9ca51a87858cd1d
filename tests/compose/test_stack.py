"""docker compose up, as a user on a CPU box runs it, checked from outside: health, the README's curls,
the services calling each other, where they write, and a killed service coming back.

Opt-in (it builds an image and runs containers): ``./scripts/test --compose`` (scripts/compose-check).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from services.registry import SERVICES
from tests.asr.speech import speak, words
from tests.compose.conftest import ROOT, Stack, port, report

pytestmark = pytest.mark.skipif(not os.environ.get("LINGXI_COMPOSE"), reason="opt-in: ./scripts/test --compose")

CHECKED_BY_README = {"asr", "tts", "llm", "embedding", "websearch"}  # vlm has no model here; opro: below
RAFT = """<html><head><title>Raft leader election</title></head><body><article><h1>Raft leader election</h1>
<p>Raft is a consensus algorithm. A follower that hears no heartbeat becomes a candidate and asks for votes.</p>
<p>The candidate that wins a majority of votes becomes the leader and sends heartbeats to the others.</p>
</article></body></html>"""


def readme_commands(block: str) -> list[str]:
    """A README bash block as its commands: continuation lines and multi-line quotes joined, heredocs skipped."""
    commands, current, heredoc = [], "", None
    for line in block.splitlines():
        if heredoc is not None:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line + "\n"
        if match := re.search(r"<<'?(\w+)'?", line):
            heredoc, current = match.group(1), ""
            continue
        if not line.endswith("\\") and current.count("'") % 2 == 0:
            commands.append(current.strip())
            current = ""
    return commands


def runnable(command: str) -> bool:
    """curl, espeak-ng and sox lines; not those needing the internet (a page of python.org, a web search or an
    answer with sources: the check runs no SearXNG), shell variables, or showing an error."""
    if not command.startswith(("curl ", "espeak-ng ", "sox ")):
        return False
    internet = any(needs in command for needs in ("python.org", "/search/web", "web_search"))
    return "$" not in command and not internet and " -i " not in command


def readme_blocks() -> dict[str, list[str]]:
    """The README's bash blocks that call a service the check can answer fully, by first service named."""
    by_port = {spec.port: name for name, spec in SERVICES.items()}
    blocks: dict[str, list[str]] = {}
    text = (ROOT / "README.md").read_text()
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        commands = [c for c in readme_commands(block) if runnable(c)]
        ports = re.findall(r"127\.0\.0\.1:(\d+)", " ".join(commands))
        named = [by_port[int(p)] for p in ports if int(p) in by_port]
        if named and all(name in CHECKED_BY_README for name in named):
            key = named[0]
            while key in blocks:
                key += "+"
            blocks[key] = commands
    return blocks


def on_check_ports(command: str) -> str:
    for name, spec in SERVICES.items():
        command = command.replace(f"127.0.0.1:{spec.port}", f"127.0.0.1:{port(name)}")
    return command.replace("127.0.0.1:8000", f"127.0.0.1:{port('pages')}")


BLOCKS = readme_blocks()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The README's files (test.wav) and its page server (/tmp/pages on port 8000 there) on the check's port."""
    path = tmp_path_factory.mktemp("readme")
    speak("Hello, this is a test of the speech recognition service.", path / "test.wav")
    pages = path / "pages"
    pages.mkdir()
    (pages / "raft.html").write_text(RAFT)
    server = ThreadingHTTPServer(("127.0.0.1", port("pages")), partial(SimpleHTTPRequestHandler, directory=pages))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield path
    server.shutdown()
    server.server_close()


def test_every_container_is_healthy_and_readiness_stays_visible(stack: Stack):
    assert stack.up_s <= 300
    rows = json.loads(compose_ps())
    assert {row["Service"] for row in rows} == {"postgres", *SERVICES}
    assert all(row["Health"] == "healthy" for row in rows), rows
    env = {**os.environ, **{f"{name.upper()}_PORT": str(port(name)) for name in SERVICES}}
    health = subprocess.run(
        [sys.executable, "-m", "services.cli", "health", "--json"], env=env, capture_output=True, text=True
    )
    status = {name: row["status"] for name, row in json.loads(health.stdout).items()}
    assert status == {**dict.fromkeys(SERVICES, "ok"), "vlm": "not_configured"}
    vlm = httpx.get(stack.url("vlm", "/health"))
    assert vlm.status_code == 503 and "VLM_ENGINE" in vlm.json()["detail"]
    assert httpx.get(stack.url("vlm", "/livez")).status_code == 200


def compose_ps() -> str:
    from tests.compose.conftest import compose

    lines = compose("ps", "--format", "json").stdout.strip().splitlines()
    return "[" + ",".join(lines) + "]" if lines and not lines[0].startswith("[") else lines[0]


@pytest.mark.parametrize("block", list(BLOCKS))
def test_the_readme_curls_answer(stack: Stack, workdir: Path, block: str):
    script = "\n".join(on_check_ports(command) for command in BLOCKS[block])
    prelude = 'set -euo pipefail\ncurl() { command curl -sS --fail-with-body --max-time 300 "$@"; }\n'
    run = subprocess.run(["bash", "-c", prelude + script], cwd=workdir, capture_output=True, text=True)
    assert run.returncode == 0, f"{script}\n--- stdout\n{run.stdout[-2000:]}\n--- stderr\n{run.stderr[-2000:]}"


def test_the_readme_blocks_cover_every_service_with_a_model_here():
    assert {block.rstrip("+") for block in BLOCKS} == CHECKED_BY_README
    assert sum(len(commands) for commands in BLOCKS.values()) >= 40


def test_llm_reaches_embedding_tts_and_asr(stack: Stack, tmp_path: Path):
    llm = stack.url("llm", "/v1")
    vectors = httpx.post(f"{llm}/embeddings", json={"input": ["我喜欢编程", "hello"]}, timeout=60)
    assert vectors.status_code == 200 and len(vectors.json()["data"]) == 2
    text = "The weather is nice today. We will walk to the park after lunch."
    speech = httpx.post(
        f"{llm}/audio/speech",
        json={"model": "tts-1", "voice": "style1", "input": text, "response_format": "wav"},
        timeout=120,
    )
    assert speech.status_code == 200 and speech.content[:4] == b"RIFF"
    heard = httpx.post(
        f"{llm}/audio/transcriptions",
        files={"file": ("s.wav", speech.content)},
        data={"model": "whisper-1"},
        timeout=120,
    )
    assert heard.status_code == 200
    said = {"weather", "nice", "today", "walk", "park", "after", "lunch"}
    assert len(said & set(words(heard.json()["text"]))) >= 4, heard.json()["text"]


def test_websearch_ingests_a_page_and_finds_it(stack: Stack, workdir: Path):
    page = f"http://127.0.0.1:{port('pages')}/raft.html"
    ingested = httpx.post(stack.url("websearch", "/ingest"), json={"url": page}, timeout=120)
    assert ingested.status_code == 200, ingested.text
    queries = {"keyword": "leader election", "semantic": "how is a new leader chosen", "hybrid": "raft votes"}
    for mode, query in queries.items():
        found = httpx.get(stack.url("websearch", f"/search/{mode}"), params={"q": query}, timeout=60)
        assert found.status_code == 200
        assert page in json.dumps(found.json()), (mode, found.text)


def test_opro_serves_its_ui_and_answers_through_the_llm(stack: Stack):
    ui = httpx.get(stack.url("opro", "/ui/"), follow_redirects=True)
    assert ui.status_code == 200 and "<html" in ui.text.lower()
    answer = httpx.post(stack.url("opro", "/answer"), json={"query": "What is the capital of France?"}, timeout=300)
    assert answer.status_code == 200 and answer.json()["code"] == 0, answer.text
    assert answer.json()["data"]


WRITES = """
import importlib, json, os, pwd, sys
from pathlib import Path
settings = importlib.import_module(sys.argv[1] + ".config").Settings()
paths = {}
for field in ("model_cache_dir", "onnx_dir", "qdrant_path", "data_dir", "feedback_path"):
    if field in type(settings).model_fields:
        path = Path(getattr(settings, field))
        folder = path.parent if field.endswith("_path") and path.suffix else path
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".compose-check"
        probe.write_text("ok")
        probe.unlink()
        paths[field] = str(path)
print(json.dumps({"user": pwd.getpwuid(os.getuid()).pw_name, "uid": os.getuid(), "paths": paths}))
"""


def test_every_service_writes_under_data_as_the_lingxi_user(stack: Stack):
    written = 0
    for name in SERVICES:
        run = stack.exec(name, "python", "-c", WRITES, name)
        assert run.returncode == 0, run.stderr
        result = json.loads(run.stdout)
        assert (result["user"], result["uid"]) == ("lingxi", 1000)
        assert all(path.startswith("/data/") for path in result["paths"].values()), result
        written += len(result["paths"])
    assert written >= 6
    owners = stack.exec("asr", "stat", "-c", "%U %n", "/data", "/data/models", "/data/qdrant").stdout.split("\n")
    assert [line.split()[0] for line in owners if line] == ["lingxi"] * 3


def test_a_killed_service_is_brought_back_by_the_restart_policy(stack: Stack):
    container = stack.container("tts")
    pid, restarts = inspect(container, "{{.State.Pid}} {{.RestartCount}}").split()
    os.kill(int(pid), signal.SIGKILL)
    killed = time.monotonic()
    deadline = killed + 180
    while time.monotonic() < deadline:
        if int(inspect(container, "{{.RestartCount}}")) > int(restarts) and healthy(stack.url("tts", "/health")):
            report(f"tts SIGKILLed, restarted and ready again in {time.monotonic() - killed:.0f} s")
            return
        time.sleep(1)
    pytest.fail("tts was not restarted within 180 s of a SIGKILL")


def inspect(container: str, template: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "-f", template, container], check=True, capture_output=True, text=True
    ).stdout.strip()


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
