"""tts voice match: speaker-embedding cosine between a prompt_audio reference and the output.

    .venv/bin/python bench/voice_match.py

For each reference (espeak-ng voices that differ in voice, pitch and rate, made here), the espeak
engine speaks the same sentence with that reference as ``prompt_audio`` and without one; the figure
is the cosine of each output's embedding with the reference's (``X-Voice-Similarity`` is the first).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.speaker_encoder import cosine  # noqa: E402
from tests.conftest import wait_for_health  # noqa: E402
from tests.tts.conftest import espeak_recording, to_16k_float, wav_audio  # noqa: E402
from tts.app import create_app  # noqa: E402
from tts.config import Engine, Settings  # noqa: E402
from tts.routes import voice_match  # noqa: E402

SENTENCE = "The weather is nice today, so we will go for a walk in the park."
REFERENCES = [("m3", 5, 120), ("m3", 50, 175), ("f4", 90, 175), ("f2", 70, 260), ("m7", 20, 150), ("f5", 80, 140)]


def main() -> None:
    app = create_app(Settings(engine=Engine.espeak))
    wait_for_health(app.test_client())
    client = app.test_client()
    plain = client.post("/synthesize", data={"text": SENTENCE}, content_type="multipart/form-data").data
    encoder = voice_match().encoder
    assert encoder is not None
    with_ref, without_ref = [], []
    print("reference (variant, pitch, rate)  with reference  without")
    for variant, pitch, rate in REFERENCES:
        data = espeak_recording(
            "I am recording my own voice as a reference for you.", variant=variant, pitch=pitch, rate=rate
        )
        response = client.post(
            "/synthesize", data={"text": SENTENCE, "prompt_audio": (io.BytesIO(data), "me.wav")},
            content_type="multipart/form-data",
        )  # fmt: skip
        similarity = float(response.headers["X-Voice-Similarity"])
        ref, without = encoder.embed([to_16k_float(wav_audio(data)), to_16k_float(wav_audio(plain))])
        with_ref.append(similarity)
        without_ref.append(cosine(ref, without))
        print(f"{variant}, {pitch}, {rate}".ljust(33), f"{similarity:.3f}".ljust(15), f"{without_ref[-1]:.3f}")
    print("mean".ljust(33), f"{np.mean(with_ref):.3f}".ljust(15), f"{np.mean(without_ref):.3f}")


if __name__ == "__main__":
    main()
