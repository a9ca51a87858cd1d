"""docker compose cannot run here (no Docker engine), so the compose file is checked against the registry."""

from pathlib import Path

import yaml

from services.registry import SERVICES

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_registered_service_is_composed_on_its_port_with_a_health_check():
    composed = COMPOSE["services"]
    for name, spec in SERVICES.items():
        service = composed[name]
        assert service["command"][:2] == ["serve", name]
        assert "--host" in service["command"] and "0.0.0.0" in service["command"]
        assert f"{spec.port}:{spec.port}" in service["ports"]
        probe = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{spec.port}/health" in probe
        assert int(service["healthcheck"]["start_period"].rstrip("s")) >= 300


def test_model_services_each_reserve_a_gpu_and_others_do_not():
    for name, spec in SERVICES.items():
        devices = COMPOSE["services"][name].get("deploy", {}).get("resources", {}).get("reservations", {})
        devices = devices.get("devices", [])
        if spec.uses_gpu:
            assert devices and devices[0]["capabilities"] == ["gpu"]
            assert devices[0]["device_ids"] == [f"${{{name.upper()}_GPU:-0}}"]
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
        assert "models:/models" in COMPOSE["services"][name]["volumes"]


def test_both_dockerfiles_exist_and_start_lingxi():
    for dockerfile in ("Dockerfile", "Dockerfile.gpu"):
        text = (ROOT / dockerfile).read_text()
        assert 'ENTRYPOINT ["lingxi"]' in text
        assert "requirements-nodeps.txt" in text


def test_every_setting_named_in_the_deployment_docs_and_compose_exists():
    """A misspelt variable in docs/deployment.md or docker-compose.yml would be silently ignored."""
    import importlib
    import re

    text = (ROOT / "docs" / "deployment.md").read_text() + (ROOT / "docker-compose.yml").read_text()
    prefixes = {name.upper(): name for name in SERVICES}
    named = set(re.findall(r"\b([A-Z]+)_([A-Z0-9_]+)(?==|:)", text))
    checked = 0
    for prefix, field in named:
        if prefix not in prefixes or field == "GPU":  # <SVC>_GPU is compose's own, for device_ids
            continue
        settings = importlib.import_module(f"{prefixes[prefix]}.config").Settings
        assert field.lower() in settings.model_fields, f"{prefix}_{field} is not a {prefixes[prefix]} setting"
        checked += 1
    assert checked >= 15
