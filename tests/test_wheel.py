"""lingxi installed as a user (and the image) installs it, not editable: every service starts from the wheel,
with the files it reads at run time (opro's web UI, websearch's migrations), and writes only under
LINGXI_DATA_DIR. The venv borrows this one's dependencies (a .pth line) and gets lingxi itself from
``pip install --no-deps`` of a copy of the tree, run from a directory that holds no source."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.postgres import LocalPostgres
from services.registry import SERVICES
from tests.conftest import free_port, stop_process

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["services", "asr", "llm", "tts", "vlm", "embedding", "websearch", "opro"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with lingxi installed from a copy of the tree: its python."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    for name in PACKAGES:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    venv.create(root / "venv", with_pip=False)
    python = root / "venv" / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], capture_output=True, text=True
    ).stdout.strip()
    (Path(purelib) / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, str(source)], check=True, cwd=root)
    shutil.rmtree(source)
    return python


def test_the_packages_come_from_the_installed_wheel(installed: Path, tmp_path: Path):
    where = subprocess.run(
        [installed, "-c", "import opro, websearch, services; print(opro.__file__, websearch.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(str(installed.parents[1]) in path for path in where), where


@pytest.fixture(scope="module")
def suite(installed: Path, local_postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Every service started from the installed ``lingxi`` in an empty directory, with its data dir."""
    workdir = tmp_path_factory.mktemp("run")
    data = workdir / "data"
    ports = {name: free_port() for name in SERVICES}
    env = {
        **os.environ,
        "LINGXI_DATA_DIR": str(data),
        "WEBSEARCH_DATABASE_URL": local_postgres.url,
        **{f"{name.upper()}_PORT": str(port) for name, port in ports.items()},
        **{f"{name.upper()}_HOST": "127.0.0.1" for name in SERVICES},
    }
    env.pop("OPRO_DATABASE_URL", None)  # opro on its SQLite in the data dir
    lingxi = installed.parent / "lingxi"
    processes = {
        name: subprocess.Popen([lingxi, "serve", name], cwd=workdir, env=env, stdout=subprocess.DEVNULL)
        for name in SERVICES
    }
    try:
        yield {"ports": ports, "processes": processes, "workdir": workdir, "data": data}
    finally:
        for process in processes.values():
            stop_process(process)


def wait_for(url: str, process: subprocess.Popen[bytes], done: Any = None, timeout_s: float = 180) -> httpx.Response:
    """The first answer from ``url`` that ``done`` accepts (by default: any answer)."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert process.poll() is None, f"{url}: the service exited with code {process.returncode}"
        try:
            response = httpx.get(url, timeout=5, trust_env=False)
            if done is None or done(response):
                return response
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} gave no awaited answer within {timeout_s:.0f} s"
        time.sleep(0.3)


def test_every_service_starts_from_the_installed_wheel(suite: dict):
    for name, port in suite["ports"].items():
        live = wait_for(f"http://127.0.0.1:{port}/livez", suite["processes"][name])
        assert live.status_code == 200, name


def test_the_package_data_is_installed(suite: dict):
    opro = f"http://127.0.0.1:{suite['ports']['opro']}"
    page = wait_for(f"{opro}/ui/", suite["processes"]["opro"])
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert httpx.get(f"{opro}/ui/assets/vendor/react.production.min.js", trust_env=False).status_code == 200
    llm = f"http://127.0.0.1:{suite['ports']['llm']}"
    voice = wait_for(f"{llm}/ui/voice", suite["processes"]["llm"])
    assert voice.status_code == 200 and "voice.js" in voice.text
    script = httpx.get(f"{llm}/ui/voice/assets/voice.js", trust_env=False)
    assert script.status_code == 200 and "/v1/realtime" in script.text
    websearch = f"http://127.0.0.1:{suite['ports']['websearch']}"
    migrated = wait_for(  # websearch's health names PostgreSQL ok once its migrations ran (from the wheel)
        f"{websearch}/health",
        suite["processes"]["websearch"],
        lambda response: response.json().get("dependencies", {}).get("postgres") == "ok",
    )
    assert migrated.json()["dependencies"]["postgres"] == "ok"
    embedding = f"http://127.0.0.1:{suite['ports']['embedding']}"
    ready = wait_for(f"{embedding}/health", suite["processes"]["embedding"], lambda r: r.json()["status"] == "ok")
    assert ready.json()["model"] == "use-multilingual-v3"
    body = {"input": "如何煮米饭", "input_type": "query"}  # queries are centred by a vector shipped as package data
    assert httpx.post(f"{embedding}/v1/embeddings", json=body, trust_env=False).status_code == 200


DEFAULT_PATHS = """
import importlib, json, sys
from pathlib import Path
paths = {}
for name in sys.argv[1:]:
    settings = importlib.import_module(name + ".config").Settings()
    for field, value in settings.model_dump().items():
        if field.endswith(("_dir", "_path")) and value is not None:
            paths[f"{name}.{field}"] = str(Path(value).absolute())
print(json.dumps(paths))
"""


def test_every_default_write_path_is_under_the_data_dir(installed: Path, tmp_path: Path):
    env = {**os.environ, "LINGXI_DATA_DIR": str(tmp_path / "data")}
    env = {key: value for key, value in env.items() if not key.endswith(("_DIR", "_PATH")) or key == "LINGXI_DATA_DIR"}
    run = subprocess.run(
        [installed, "-c", DEFAULT_PATHS, *SERVICES], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    paths = json.loads(run.stdout)
    assert {"asr.model_cache_dir", "llm.model_cache_dir", "websearch.qdrant_path", "opro.feedback_path"} <= set(paths)
    assert {field: path for field, path in paths.items() if not path.startswith(f"{tmp_path}/data/")} == {}


def test_the_running_services_wrote_nothing_outside_their_data_dir(suite: dict):
    for name, port in suite["ports"].items():  # every one still up, having started its engine
        wait_for(f"http://127.0.0.1:{port}/livez", suite["processes"][name])
    assert {path.name for path in suite["workdir"].iterdir()} <= {"data"}
