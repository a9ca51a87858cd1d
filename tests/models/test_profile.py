"""``lingxi models pull --profile production``: the directories the services' settings select, from
ModelScope or Hugging Face (local servers speaking their APIs), once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services import cli
from tests.models.hub_servers import Hub, serve

PRODUCTION = {
    "ASR_ENGINE": "sensevoice",
    "ASR_MODEL_DIR": "SenseVoiceSmall",
    "ASR_VAD_DIR": "fsmn-vad",
    "EMBEDDING_ENGINE": "sentence-transformers",
    "EMBEDDING_MODEL_PATH": "Qwen3-Embedding-4B",
    "TTS_ENGINE": "indextts",
    "TTS_CHECKPOINTS_DIR": "index-tts/checkpoints",
    "VLM_ENGINE": "transformers",
    "VLM_MODEL_PATH": "Qwen2.5-VL-7B-Instruct",
}


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    server = Hub()
    files = {
        "iic/SenseVoiceSmall": ["model.pt", "config.yaml"],
        "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch": ["model.pt", "config.yaml"],
        "IndexTeam/IndexTTS-2": ["gpt.pth", "config.yaml"],
        "Qwen/Qwen2.5-VL-7B-Instruct": ["model.safetensors", "config.json"],
        "Qwen/Qwen3-Embedding-4B": ["model.safetensors", "config.json"],
    }
    for repo, names in files.items():
        for name in names:
            path = tmp_path / "hub" / repo / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{repo}/{name}\n")
            server.add(repo, name, path)
    with serve(server):
        yield server


@pytest.fixture
def models(tmp_path: Path, hub: Hub, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no .env but the test's
    root = tmp_path / "models"
    monkeypatch.setenv("LINGXI_MODELS_DIR", str(root))
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", hub.url)
    monkeypatch.setenv("LINGXI_MODEL_SOURCES", "modelscope,hf")
    return root


def write_env(tmp_path: Path, root: Path, values: dict[str, str]) -> None:
    lines = [f"{key}={root / value if key.endswith(('_DIR', '_PATH')) else value}" for key, value in values.items()]
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")


def test_pulls_what_the_env_selects_once(models: Path, hub: Hub, tmp_path: Path):
    write_env(tmp_path, models, PRODUCTION)
    assert cli.main(["models", "pull", "--profile", "production"]) == 0
    assert (models / "SenseVoiceSmall" / "model.pt").read_text() == "iic/SenseVoiceSmall/model.pt\n"
    assert (models / "fsmn-vad" / "config.yaml").is_file()
    assert (models / "index-tts" / "checkpoints" / "gpt.pth").is_file()
    assert (models / "Qwen2.5-VL-7B-Instruct" / "config.json").is_file()
    assert (models / "Qwen3-Embedding-4B" / "model.safetensors").is_file()
    assert not any("/api/models/" in r for r in hub.requests)  # ModelScope first: it had them all

    asked = len(hub.requests)
    assert cli.main(["models", "pull", "--profile", "production"]) == 0
    assert len(hub.requests) == asked  # complete already: a restart asks no hub


def test_falls_back_to_hugging_face_for_what_modelscope_lacks(models: Path, hub: Hub, tmp_path: Path):
    del hub.repos["iic/SenseVoiceSmall"]
    hub.repos["FunAudioLLM/SenseVoiceSmall"] = hub.repos["iic/speech_fsmn_vad_zh-cn-16k-common-pytorch"]
    write_env(tmp_path, models, {k: PRODUCTION[k] for k in ("ASR_ENGINE", "ASR_MODEL_DIR")})
    assert cli.main(["models", "pull", "--profile", "production"]) == 0
    assert any("/api/models/FunAudioLLM/SenseVoiceSmall" in r for r in hub.requests)
    assert (models / "SenseVoiceSmall" / "model.pt").is_file()


def test_the_embedded_defaults_need_nothing(models: Path, hub: Hub, capsys: pytest.CaptureFixture[str]):
    assert cli.main(["models", "pull", "--profile", "production"]) == 0
    assert "nothing to pull" in capsys.readouterr().out
    assert hub.requests == []


def test_a_directory_outside_the_models_dir_or_of_an_unknown_model_is_refused(
    models: Path, hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    (tmp_path / ".env").write_text("VLM_ENGINE=transformers\nVLM_MODEL_PATH=/etc/Qwen2.5-VL-7B-Instruct\n")
    assert cli.main(["models", "pull", "--profile", "production"]) == 2
    assert "outside the models directory" in capsys.readouterr().err
    write_env(tmp_path, models, {"VLM_ENGINE": "transformers", "VLM_MODEL_PATH": "my-finetune"})
    assert cli.main(["models", "pull", "--profile", "production"]) == 2
    assert "no hub id is known for 'my-finetune'" in capsys.readouterr().err
    assert hub.requests == []
