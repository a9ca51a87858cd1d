"""asr diarization benchmark: DER and its parts, speaker-count accuracy, known-speaker attribution, cost.

    .venv/bin/python bench/diarize.py [conversations per speaker count, default 10] [speaker counts, default 234]

Conversations of 2, 3 and 4 speakers are built here from espeak-ng voices that differ in voice, pitch
and rate (tests/asr/speech.py), 8 turns of 1–6 s each, no overlap, 0.6–1.0 s between turns. DER is
scored on 10 ms frames with a 0.25 s collar around each true boundary, under the best one-to-one
speaker mapping. The cost compares the diarizer (VAD + embeddings + clustering) with the
transcription of the same audio by the embedded Whisper base (word timestamps on, as diarize does).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr.config import Settings  # noqa: E402
from asr.diarize import Diarizer, SpeakerOptions, speaker_at  # noqa: E402
from asr.engines.whisper import WhisperEngine  # noqa: E402
from asr.pipeline import Transcriber  # noqa: E402
from services.speaker_encoder import ResemblyzerEncoder  # noqa: E402
from tests.asr.speech import VOICES, conversation, diarization_error, say  # noqa: E402

TIMED = 3  # conversations per speaker count also transcribed, for the cost ratio


def main() -> None:
    per_count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    encoder = ResemblyzerEncoder()
    encoder.load()
    engine = WhisperEngine(Settings(model_cache_dir=ROOT / ".data/models"))
    asyncio.run(engine.start())
    transcriber = Transcriber(engine, Settings(model_cache_dir=ROOT / ".data/models"), "whisper")
    diarizer = Diarizer(encoder, transcriber)
    references = {
        f"speaker{i}": say("This is a short sample of my voice for the reference.", v) for i, v in enumerate(VOICES)
    }
    rows = []
    for speakers in [int(n) for n in (sys.argv[2] if len(sys.argv) > 2 else "234")]:
        errors, counted, named, named_total, costs = [], 0, 0, 0, []
        for seed in range(per_count):
            audio, truth = conversation(speakers, 8, seed)
            started = time.perf_counter()
            turns = asyncio.run(diarizer.turns(audio, SpeakerOptions()))
            diarize_s = time.perf_counter() - started
            errors.append(diarization_error(truth, [(t.speaker, t.start, t.end) for t in turns]))
            counted += len({t.speaker for t in turns}) == len({t.speaker for t in truth})
            known = {f"speaker{s}": references[f"speaker{s}"] for s in range(speakers)}
            named_turns = asyncio.run(diarizer.turns(audio, SpeakerOptions(known=known)))
            for turn in truth:
                named += speaker_at(named_turns, turn.start, turn.end) == f"speaker{turn.speaker}"
                named_total += 1
            if seed < TIMED:
                started = time.perf_counter()
                asyncio.run(transcriber.transcribe(audio, language="en", words=True))
                costs.append(diarize_s / (time.perf_counter() - started))
        rows.append(
            (
                speakers,
                np.mean([e.total for e in errors]),
                np.mean([e.missed for e in errors]),
                np.mean([e.false_alarm for e in errors]),
                np.mean([e.confusion for e in errors]),
                counted / per_count,
                named / named_total,
                float(np.mean(costs)),
            )
        )
        print(f"{speakers} speakers done", flush=True)
    print(f"\n{per_count} conversations per speaker count, 8 turns each")
    print("speakers  DER     missed  f.alarm  confusion  count right  named right  diarize / transcribe time")
    for speakers, der, missed, fa, confusion, count, named_share, cost in rows:
        print(
            f"{speakers:<8}  {der:6.1%}  {missed:6.1%}  {fa:7.1%}  {confusion:9.1%}  {count:11.0%}  {named_share:11.0%}"
            f"  {cost:.3f}"
        )


if __name__ == "__main__":
    main()
