"""How close a synthesised voice is to the caller's reference: the speaker-embedding cosine of the two.

The encoder is asr's diarization encoder (``services.speaker_encoder``, weights in the resemblyzer
wheel), loaded on the first request with a reference. Optional: without the wheel (or torch) tts runs
as before and ``similarity`` returns None.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from services.errors import NotConfigured
from services.media import SAMPLE_RATE
from services.speaker_encoder import ResemblyzerEncoder, cosine
from tts.audio import Audio, resample

log = logging.getLogger("lingxi.tts")


class VoiceMatch:
    def __init__(self) -> None:
        self.encoder: ResemblyzerEncoder | None = ResemblyzerEncoder()
        self.lock = threading.Lock()  # one embedding at a time: the encoder is small, the CPU is shared

    def similarity(self, reference: np.ndarray, output: Audio) -> float | None:
        """Cosine between the reference (mono 16 kHz float32) and the output; None when no encoder."""
        if self.encoder is None:
            return None
        spoken = resample(output, SAMPLE_RATE).samples.astype(np.float32) / 32768
        try:
            with self.lock:
                reference_embedding, output_embedding = self.encoder.embed([reference, spoken])
        except (ImportError, NotConfigured, OSError, RuntimeError) as exc:  # optional figure, not synthesis
            log.warning("voice similarity is off: %s", exc)
            self.encoder = None
            return None
        return round(cosine(reference_embedding, output_embedding), 3)
