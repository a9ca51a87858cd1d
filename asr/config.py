"""asr settings: environment variables prefixed ``ASR_`` (or lines in ``.env``)."""

from __future__ import annotations

import enum
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings, data_path


class Engine(str, enum.Enum):
    whisper = "whisper"
    sensevoice = "sensevoice"
    upstream = "upstream"


class SpeakerEncoderName(str, enum.Enum):
    resemblyzer = "resemblyzer"
    none = "none"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ASR_", env_file=".env", extra="ignore")

    port: int = Field(7205, description="TCP port of the asr service.")
    engine: Engine = Field(
        Engine.whisper,
        description="whisper (faster-whisper; default: the embedded Whisper base), sensevoice (funasr "
        "SenseVoiceSmall from ASR_MODEL_DIR) or upstream (an OpenAI-compatible /v1/audio/transcriptions).",
    )
    model_cache_dir: Path = Field(
        default_factory=lambda: data_path("models"),
        description="Where the embedded Whisper base is assembled once (sha256 checked); default: "
        "$LINGXI_DATA_DIR/models.",
    )
    model_dir: Path | None = Field(
        None,
        description="Local model directory: SenseVoiceSmall for engine=sensevoice, a CTranslate2 Whisper "
        "(faster-whisper format) for engine=whisper. Empty for whisper: the embedded Whisper base.",
    )
    vad_dir: Path | None = Field(None, description="engine=sensevoice: the local fsmn-vad model directory.")
    device: str = Field("auto", description="cpu, cuda or auto (cuda when a GPU is visible).")
    compute_type: str = Field(
        "default", description="whisper: CTranslate2 compute type; default = int8 on CPU, float16 on CUDA."
    )
    cpu_threads: int = Field(0, description="whisper: CPU threads per model call (0: CTranslate2's choice).")
    beam_size: int = Field(5, ge=1, le=10, description="whisper: beam size.")
    use_itn: bool = Field(True, description="sensevoice: inverse text normalisation (punctuation, numbers).")
    upstream_url: str | None = Field(
        None, description="engine=upstream: base URL of an OpenAI-compatible server, e.g. http://vllm:8000/v1."
    )
    upstream_model: str = Field("whisper-1", description="engine=upstream: the model name sent upstream.")
    upstream_api_key: str | None = Field(None, description="engine=upstream: Bearer key for the upstream.")
    upstream_ca_bundle: str | None = Field(
        None,
        description="PEM file of a private CA for the upstream's certificate (unset: SSL_CERT_FILE or public roots).",
    )
    upstream_timeout_s: float = Field(120.0, description="engine=upstream: deadline of one upstream call.")
    max_audio_bytes: int = Field(25 * 1024 * 1024, description="Largest audio upload (413 above it).")
    max_audio_seconds: float = Field(3600.0, description="Longest audio accepted, after decoding (413 above it).")
    max_pending: int = Field(
        8, ge=1, description="Transcriptions admitted at once (running or waiting for the model); beyond: 429."
    )
    chunk_seconds: float = Field(
        30.0, gt=1, le=30, description="Speech is cut at VAD pauses into pieces of at most this many seconds."
    )
    min_silence_ms: int = Field(500, ge=100, description="A pause this long ends a speech segment (VAD).")
    live_silence_ms: int = Field(
        300,
        ge=100,
        description="WS /asr/ws: a pause this long closes a phrase and sends its draft (shorter than "
        "ASR_MIN_SILENCE_MS, so the draft comes sooner).",
    )
    ws_max_seconds: float = Field(3600.0, description="Longest live session on WS /asr/ws, in seconds of audio.")
    speaker_encoder: SpeakerEncoderName = Field(
        SpeakerEncoderName.resemblyzer,
        description="Diarization's speaker encoder: resemblyzer (its GE2E weights ship in the resemblyzer wheel, "
        "loaded on the first diarize request) or none (diarization off).",
    )
