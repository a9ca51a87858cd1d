"""The production set: which weights the ``.env`` selects, and where each comes from on either hub.

``lingxi models pull --profile production`` reads the services' own settings (environment and
``.env``), so it fetches exactly the directories the services will load: each selected directory must
lie inside the models directory (``/models`` in compose), and its last name picks the repo below. A
directory pulled whole is marked complete and not asked about again, so a restart needs no hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.models.hubs import configured_sources
from services.models.pull import Candidate, Reporter, pull
from services.models.store import ModelStore


@dataclass(frozen=True)
class Weights:
    hf: str
    modelscope: str


SENSEVOICE = Weights("FunAudioLLM/SenseVoiceSmall", "iic/SenseVoiceSmall")
FSMN_VAD = Weights("funasr/fsmn-vad", "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch")
INDEXTTS2 = Weights("IndexTeam/IndexTTS-2", "IndexTeam/IndexTTS-2")
# directories named after a Qwen model hold that model; the ids are the same on both hubs
QWEN = (
    *(f"Qwen3-Embedding-{size}" for size in ("0.6B", "4B", "8B")),
    *(f"Qwen3-VL-Embedding-{size}" for size in ("2B", "8B")),
    *(f"Qwen2.5-VL-{size}-Instruct" for size in ("3B", "7B", "32B", "72B")),
    *(f"Qwen3-VL-{size}-Instruct" for size in ("2B", "4B", "8B", "32B")),
)
BY_NAME = {"SenseVoiceSmall": SENSEVOICE, "fsmn-vad": FSMN_VAD, **{n: Weights(f"Qwen/{n}", f"Qwen/{n}") for n in QWEN}}


@dataclass(frozen=True)
class Selected:
    setting: str  # the variable that names the directory
    path: Path
    weights: Weights


def by_name(setting: str, path: Path) -> Selected:
    weights = BY_NAME.get(path.name)
    if weights is None:
        known = ", ".join(sorted(BY_NAME))
        raise ValueError(f"{setting}={path}: no hub id is known for {path.name!r} (known: {known})")
    return Selected(setting, path, weights)


def selected() -> list[Selected]:
    """The production directories the services' settings name, for the engines they select."""
    from asr.config import Settings as Asr
    from embedding.config import Settings as Embedding
    from tts.config import Settings as Tts
    from vlm.config import Settings as Vlm

    chosen: list[Selected] = []
    asr = Asr()
    if asr.engine.value == "sensevoice":
        if asr.model_dir:
            chosen.append(Selected("ASR_MODEL_DIR", asr.model_dir, SENSEVOICE))
        if asr.vad_dir:
            chosen.append(Selected("ASR_VAD_DIR", asr.vad_dir, FSMN_VAD))
    embedding = Embedding()
    if embedding.engine.value in ("sentence-transformers", "transformers") and embedding.model_path:
        chosen.append(by_name("EMBEDDING_MODEL_PATH", embedding.model_path))
    tts = Tts()
    if tts.engine.value == "indextts" and (tts.checkpoints_dir or tts.indextts_dir):
        checkpoints = tts.checkpoints_dir or Path(tts.indextts_dir or "") / "checkpoints"
        chosen.append(Selected("TTS_CHECKPOINTS_DIR", checkpoints, INDEXTTS2))
    vlm = Vlm()
    if vlm.engine.value == "transformers" and vlm.model_path:
        chosen.append(by_name("VLM_MODEL_PATH", Path(vlm.model_path)))
    return chosen


def pull_profile(profile: str, source: str | None, store: ModelStore, report: Reporter | None = None) -> list[Selected]:
    """Pull every selected directory that is not complete yet; nothing selected: nothing to do."""
    sources = configured_sources(source)
    chosen = selected()
    root = store.root.resolve()
    for item in chosen:
        if not item.path.resolve().is_relative_to(root):
            raise ValueError(f"{item.setting}={item.path} is outside the models directory {store.root}")
    if not chosen:
        print(f"the {profile} profile selects no weights in this configuration (.env); nothing to pull")
    for item in chosen:
        name = str(item.path.resolve().relative_to(root))
        if store.is_complete(name):
            print(f"{item.setting}: {name} is complete", flush=True)
            continue
        candidates = [Candidate(s, getattr(item.weights, s)) for s in sources]
        print(f"{item.setting}: {name} from {' or '.join(f'{c.source}:{c.repo}' for c in candidates)}", flush=True)
        pull(name, candidates, store=store, report=report)
    return chosen
