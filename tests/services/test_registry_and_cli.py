import importlib

import pytest

from services.cli import child_env, gpu_map, main
from services.registry import SERVICES, get_spec


def test_registry_has_the_seven_services_on_the_seed_ports():
    assert {name: spec.port for name, spec in SERVICES.items()} == {
        "asr": 7205,
        "llm": 7207,
        "tts": 7206,
        "vlm": 7208,
        "embedding": 7202,
        "websearch": 5080,
        "opro": 8010,
    }
    assert SERVICES["tts"].framework == "flask"
    with pytest.raises(KeyError, match="known"):
        get_spec("nope")


@pytest.mark.parametrize("name", list(SERVICES))
def test_every_service_module_has_settings_with_its_prefix_and_an_app(name, monkeypatch):
    spec = SERVICES[name]
    monkeypatch.setenv(f"{name.upper()}_PORT", "12345")
    settings = importlib.import_module(f"{spec.module}.config").Settings()
    assert settings.port == 12345
    monkeypatch.delenv(f"{name.upper()}_PORT")
    assert importlib.import_module(f"{spec.module}.config").Settings().port == spec.port
    assert importlib.import_module(f"{spec.module}.app").create_app is not None


def test_gpu_pinning_map(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    pins = gpu_map("asr=0, llm=1+2,bogus")
    assert pins == {"asr": "0", "llm": "1,2"}
    assert child_env(SERVICES["llm"], pins, {})["CUDA_VISIBLE_DEVICES"] == "1,2"
    assert "CUDA_VISIBLE_DEVICES" not in child_env(SERVICES["opro"], pins, {})


def test_health_command_reports_down_services(capsys, monkeypatch):
    monkeypatch.setenv("ASR_PORT", "9")  # nothing listens on the discard port
    assert main(["health", "asr"]) == 1
    out = capsys.readouterr().out
    assert "asr" in out and "down" in out


def test_list_settings_read_comma_separated_env(monkeypatch):
    from websearch.config import Settings

    monkeypatch.setenv("WEBSEARCH_ALLOWED_HOSTS", "127.0.0.1:8080, intranet.local:80")
    assert Settings().allowed_hosts == ["127.0.0.1:8080", "intranet.local:80"]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b'{"code":0,"msg":"ok","data":{"status":"ok"}}', ("ok", "")),
        (503, b'{"code":503,"msg":"llm unreachable","data":null}', ("error", "llm unreachable")),
    ],
)
def test_health_reads_the_opro_envelope(local_server, monkeypatch, status, body, expected):
    from services.cli import fetch_health
    from tests.conftest import reply

    local_server.routes["/health"] = reply(status, body, "application/json")
    monkeypatch.setenv("OPRO_PORT", str(local_server.port))
    row = fetch_health(get_spec("opro"), "127.0.0.1")
    assert (row["status"], row["detail"]) == expected
