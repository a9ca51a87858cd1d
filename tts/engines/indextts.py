"""IndexTTS2 (github.com/index-tts/index-tts) from a local checkout and checkpoints dir: the
production engine on a GPU box.

Styles are reference audios: ``<styles_dir>/<style>.wav`` (any of wav/flac/mp3/ogg), with
``style1``/``style2`` falling back to the checkout's ``examples/voice_01.wav``/``voice_02.wav``.
A request's ``prompt_audio`` is the speaker prompt; when the request also names a style, that
style's audio becomes the emotion prompt (``emo_audio_prompt``). ``temperature`` and ``top_p`` go to
``infer`` as generation kwargs. IndexTTS2's object is not safe for concurrent calls:
``max_parallel = 1`` makes the service run one generation at a time.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.engine import Engine, require_settings
from services.errors import BadRequest, LingxiError, NotConfigured
from tts.audio import read_wav, to_wav
from tts.config import Settings
from tts.engines.base import Audio, PromptAudio, SynthesisRequest

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
BUILTIN_STYLES = {"style1": "examples/voice_01.wav", "style2": "examples/voice_02.wav"}
# containers IndexTTS2 (librosa/soundfile) reads as they are; anything else is passed decoded
PASSTHROUGH = {b"RIFF": ".wav", b"fLaC": ".flac", b"OggS": ".ogg"}

ModelFactory = Callable[..., Any]


def import_indextts2(checkout: Path) -> ModelFactory:
    """``indextts.infer_v2.IndexTTS2`` from the checkout (importable without installing it)."""
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    try:  # infer_v2 sets HF_HUB_CACHE to a cwd-relative path at import; fix the hub's paths first
        import huggingface_hub.constants  # noqa: F401
    except ImportError:
        pass
    from indextts.infer_v2 import IndexTTS2

    return IndexTTS2


class IndexTTSEngine(Engine):
    name = "indextts"
    max_parallel = 1
    handles_speed = False

    def __init__(self, settings: Settings) -> None:
        require_settings(settings, "indextts_dir")
        self.checkout = Path(settings.indextts_dir or "").resolve()
        self.checkpoints = (settings.checkpoints_dir or self.checkout / "checkpoints").resolve()
        self.styles_dir = settings.styles_dir.resolve() if settings.styles_dir else None
        self.fp16 = settings.indextts_fp16
        self.device = settings.indextts_device
        self.model: Any = None
        self.style_paths: dict[str, Path] = {}
        self.lock = threading.Lock()

    async def start(self) -> None:
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        config = self.checkpoints / "config.yaml"
        if not (self.checkout / "indextts" / "infer_v2.py").is_file():
            raise NotConfigured(f"{self.checkout} is not an index-tts checkout (no indextts/infer_v2.py)")
        if not config.is_file():
            raise NotConfigured(f"no IndexTTS2 checkpoints in {self.checkpoints} (no config.yaml; see docs/tts.md)")
        self.style_paths = self.find_styles()
        if not self.style_paths:
            raise NotConfigured(f"no style audio (put <style>.wav files in {self.styles_dir or 'TTS_STYLES_DIR'})")
        # IndexTTS2 fetches helper models through huggingface_hub; keep them beside the checkpoints
        # and never reach the network at run time.
        os.environ.setdefault("HF_HUB_CACHE", str(self.checkpoints / "hf_cache"))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        factory = import_indextts2(self.checkout)
        self.model = factory(
            cfg_path=str(config), model_dir=str(self.checkpoints), use_fp16=self.fp16, device=self.device
        )

    def find_styles(self) -> dict[str, Path]:
        styles: dict[str, Path] = {}
        for name, relative in BUILTIN_STYLES.items():
            if (self.checkout / relative).is_file():
                styles[name] = self.checkout / relative
        if self.styles_dir and self.styles_dir.is_dir():
            for path in sorted(self.styles_dir.iterdir()):
                if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file():
                    styles[path.stem] = path
        return styles

    def styles(self) -> list[str]:
        return list(self.style_paths)

    def synthesize(self, request: SynthesisRequest) -> Audio:
        style_path = self.style_paths.get(request.style)
        if style_path is None:
            raise BadRequest(f"unknown style {request.style!r}; valid styles: {', '.join(self.style_paths)}")
        with self.lock, tempfile.TemporaryDirectory(prefix="lingxi-tts-") as work:
            speaker, emotion = str(style_path), None
            if request.prompt_audio is not None:
                speaker = str(write_prompt(request.prompt_audio, Path(work)))
                emotion = str(style_path) if request.style_explicit else None
            output = Path(work) / "output.wav"
            generation: dict[str, Any] = {}
            if request.temperature is not None:
                generation["temperature"] = request.temperature
            if request.top_p is not None:
                generation["top_p"] = request.top_p
            if generation:
                generation["do_sample"] = True
            try:
                self.model.infer(
                    spk_audio_prompt=speaker,
                    text=request.text,
                    output_path=str(output),
                    emo_audio_prompt=emotion,
                    verbose=False,
                    **generation,
                )
                return read_wav(output.read_bytes())
            except (RuntimeError, ValueError, OSError) as exc:  # torch raises RuntimeError (CUDA OOM, ...)
                raise LingxiError(f"IndexTTS2 failed: {type(exc).__name__}") from exc


def write_prompt(prompt: PromptAudio, directory: Path) -> Path:
    """The reference recording as a file IndexTTS2 can read: the upload itself where its container
    is one librosa reads, else the decoded 16 kHz audio as WAV."""
    suffix = PASSTHROUGH.get(prompt.data[:4])
    if suffix:
        path = directory / f"prompt{suffix}"
        path.write_bytes(prompt.data)
        return path
    path = directory / "prompt.wav"
    samples = (prompt.samples.clip(-1.0, 1.0) * 32767).astype("int16")
    path.write_bytes(to_wav(Audio(samples, prompt.sample_rate)))
    return path
