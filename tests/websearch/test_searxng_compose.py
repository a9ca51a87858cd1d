"""The compose SearXNG (no Docker engine here: the files are checked)."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_searxng_serves_json_without_limiter_with_a_secret_from_env_and_websearch_uses_it():
    searxng = COMPOSE["services"]["searxng"]
    assert searxng["image"].startswith("docker.io/searxng/searxng")
    assert searxng["environment"]["SEARXNG_SECRET"].startswith("${SEARXNG_SECRET:-")  # .env's, or a default
    assert "/healthz" in " ".join(searxng["healthcheck"]["test"])
    assert "ports" not in searxng  # websearch's backend, not published on the host
    [mount] = searxng["volumes"]
    source, target, mode = mount.split(":")
    assert target == "/etc/searxng/settings.yml" and mode == "ro"
    settings = yaml.safe_load((ROOT / source).read_text())
    assert settings["use_default_settings"] is True
    assert "json" in settings["search"]["formats"] and "html" in settings["search"]["formats"]
    assert settings["server"]["limiter"] is False
    assert COMPOSE["services"]["websearch"]["environment"]["WEBSEARCH_SEARXNG_URL"] == "http://searxng:8080"
