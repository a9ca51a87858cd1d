"""The compose files and the Dockerfile, held to the service registry and to each other.

They are run for real by the opt-in compose check (``./scripts/test --compose``: tests/compose); these
checks are the fast part that every test run does. The GPU path (docker-compose.yml alone) cannot run on
a machine without GPUs: it is the CPU path's image built with other extras, checked here to stay so.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import yaml

from services.registry import SERVICES

ROOT = Path(__file__).resolve().parents[1]


class ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's merge tags: ``!reset`` and ``!override`` kept as {"!reset": value}."""


for _tag in ("!reset", "!override"):
    ComposeLoader.add_constructor(
        _tag,
        lambda loader, node, tag=_tag: {
            tag: loader.construct_sequence(node)
            if isinstance(node, yaml.SequenceNode)
            else loader.construct_mapping(node)
            if isinstance(node, yaml.MappingNode)
            else loader.construct_scalar(node)
        },
    )


def load(name: str) -> dict[str, Any]:
    return yaml.load((ROOT / name).read_text(), Loader=ComposeLoader)


COMPOSE = load("docker-compose.yml")
CPU = load("docker-compose.cpu.yml")
CHECK = load("docker-compose.check.yml")
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_every_registered_service_is_composed_on_its_port_with_a_liveness_probe():
    composed = COMPOSE["services"]
    for name, spec in SERVICES.items():
        service = composed[name]
        assert service["command"][:2] == ["serve", name]
        assert "--host" in service["command"] and "0.0.0.0" in service["command"]
        assert f"{spec.port}:{spec.port}" in service["ports"]
        assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "services.probe", name]
        assert int(service["healthcheck"]["start_period"].rstrip("s")) >= 300


def test_the_image_is_built_once_and_shared():
    composed = COMPOSE["services"]
    builders = [name for name in SERVICES if "build" in composed[name]]
    assert len(builders) == 1
    assert {composed[name]["image"] for name in SERVICES} == {"lingxi:gpu"}
    assert composed[builders[0]]["build"]["args"]["EXTRAS"] == "embedded,gpu"
    assert CPU["services"][builders[0]]["build"]["args"]["EXTRAS"] == "embedded"
    assert {CPU["services"][name]["image"] for name in SERVICES} == {"lingxi:cpu"}


def test_model_services_each_reserve_a_gpu_and_the_cpu_file_drops_every_reservation():
    for name, spec in SERVICES.items():
        devices = COMPOSE["services"][name].get("deploy", {}).get("resources", {}).get("reservations", {})
        devices = devices.get("devices", [])
        if spec.uses_gpu:
            assert devices and devices[0]["capabilities"] == ["gpu"]
            assert devices[0]["device_ids"] == [f"${{{name.upper()}_GPU:-0}}"]
            assert CPU["services"][name]["deploy"] == {"!reset": "null"}
        else:
            assert not devices


def test_databases_are_official_images_with_health_checks_and_dependents_wait_for_health():
    services = COMPOSE["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert "C.UTF-8" in services["postgres"]["environment"]["POSTGRES_INITDB_ARGS"]
    assert services["qdrant"]["image"].startswith("qdrant/qdrant:")
    for name in ("postgres", "qdrant"):
        assert services[name]["healthcheck"]["test"]
    for dependent, needs in {"websearch": {"postgres", "qdrant", "embedding"}, "opro": {"llm", "embedding"}}.items():
        depends = services[dependent]["depends_on"]
        assert needs <= set(depends)
        assert all(depends[n]["condition"] == "service_healthy" for n in needs)


def test_weights_and_data_live_in_named_volumes():
    assert {"models", "data", "pgdata", "qdrant"} <= set(COMPOSE["volumes"])
    for name in SERVICES:
        assert {"models:/models", "data:/data"} <= set(COMPOSE["services"][name]["volumes"])


def test_a_one_shot_service_pulls_the_production_weights_before_the_model_services_start():
    services = COMPOSE["services"]
    models = services["models"]
    assert models["command"] == ["models", "pull", "--profile", "production"]
    assert models["restart"] == "no" and "models:/models" in models["volumes"]
    assert models["image"] == "lingxi:gpu" and CPU["services"]["models"]["image"] == "lingxi:cpu"
    assert "LINGXI_MODELS_DIR=/models" in DOCKERFILE  # where the pull writes and the services read
    for name, spec in SERVICES.items():
        waits = services[name].get("depends_on", {}).get("models", {}).get("condition")
        wanted = spec.uses_gpu and name != "llm"  # llm's production model is an upstream (vLLM) or pulled
        assert waits == ("service_completed_successfully" if wanted else None), name
    assert services["llm"]["environment"]["HF_HUB_OFFLINE"] == "0"  # Ollama's pull
    assert CHECK["services"]["models"]["network_mode"] == "host"


def test_the_check_runs_every_service_on_loopback_of_the_host_network_on_the_ports_it_chose():
    services = CHECK["services"]
    for name in [*SERVICES, "postgres"]:
        assert services[name]["network_mode"] == "host"
        assert services[name]["ports"] == {"!reset": []}
    for name in SERVICES:
        assert COMPOSE["services"][name]["extra_hosts"] == ["host.docker.internal:host-gateway"]
        assert services[name]["extra_hosts"] == {"!reset": []}  # no gateway without a bridge
        assert services[name]["command"] == ["serve", name, "--host", "127.0.0.1"]
        port = services[name]["environment"][f"{name.upper()}_PORT"]
        assert port == f"${{LINGXI_CHECK_{name.upper()}_PORT:-{SERVICES[name].port}}}"
    text = (ROOT / "docker-compose.check.yml").read_text()
    hosts = set(re.findall(r"://(?:[^@/\s]*@)?([^:/\s]+)", text))
    assert hosts == {"127.0.0.1"}, "a service name does not resolve on the host network"
    assert services["postgres"]["command"] == ["postgres", "-c", "listen_addresses=127.0.0.1"]


def test_one_dockerfile_for_both_images_runs_lingxi_as_uid_1000_writing_under_data():
    assert not (ROOT / "Dockerfile.gpu").exists()
    assert DOCKERFILE.count("\nFROM ") == 1 and "FROM python:3.11-slim-bookworm" in DOCKERFILE
    assert "ARG EXTRAS=embedded\n" in DOCKERFILE
    assert 'ENTRYPOINT ["lingxi"]' in DOCKERFILE
    assert "useradd --create-home --uid 1000 lingxi" in DOCKERFILE and "USER lingxi" in DOCKERFILE
    assert "LINGXI_DATA_DIR=/data" in DOCKERFILE and "chown lingxi /data /models" in DOCKERFILE
    assert "pip install --no-deps -r requirements-nodeps.txt" in DOCKERFILE
    assert "pip install --no-deps ." in DOCKERFILE  # not editable: package data must be in the wheel


def test_the_dockerfile_compiles_the_llama_cpp_python_that_pyproject_pins():
    pinned = re.search(r'"(llama-cpp-python==[^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pinned and f"pip install {pinned.group(1)} " in DOCKERFILE


def test_the_build_context_leaves_out_secrets_and_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".env.*", ".git", ".venv", ".data"} <= set(ignored)


def test_the_cpu_extra_needs_no_torch():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {re.split(r"[\[<>=!~ ]", requirement)[0].lower() for requirement in extras["embedded"]}
    assert not names & {"torch", "torchvision", "sentence-transformers", "accelerate", "transformers"}
    assert "lingxi[torch,sensevoice]" in extras["gpu"]


def test_every_setting_named_in_the_deployment_docs_and_compose_exists():
    """A misspelt variable in docs/deployment.md or a compose file would be silently ignored."""
    names = ("docs/deployment.md", "docker-compose.yml", "docker-compose.cpu.yml", "docker-compose.check.yml")
    text = "".join((ROOT / name).read_text() for name in names)
    prefixes = {name.upper(): name for name in SERVICES}
    named = set(re.findall(r"\b([A-Z]+)_([A-Z0-9_]+)(?==|:)", text))
    checked = 0
    for prefix, field in named:
        if prefix not in prefixes or field == "GPU":  # <SVC>_GPU is compose's own, for device_ids
            continue
        settings = importlib.import_module(f"{prefixes[prefix]}.config").Settings
        assert field.lower() in settings.model_fields, f"{prefix}_{field} is not a {prefixes[prefix]} setting"
        checked += 1
    assert checked >= 20
