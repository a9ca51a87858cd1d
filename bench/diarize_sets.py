"""asr diarization on the held-out sets: tune on ``dev``, measure on ``eval`` (tests/asr/conversations.py).

    .venv/bin/python bench/diarize_sets.py            # dev and eval, side by side
    .venv/bin/python bench/diarize_sets.py --tune     # the grid of thresholds, scored on dev only
    .venv/bin/python bench/diarize_sets.py --write    # regenerate tests/data/diarize_sets.json from the seeds

Per set: the share of conversations whose speaker count is found, the share of single-speaker speech
attributed to the right speaker under the best one-to-one label mapping (free count, and with
``num_speakers`` given), and whether ``num_speakers`` gave exactly that many speakers. The diarizer is
run as the service runs it (the engine's Silero VAD, then ``Diarizer.turns_blocking``), without
transcription.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr import speaker_clusters  # noqa: E402
from asr.diarize import Diarizer, SpeakerOptions  # noqa: E402
from asr.engines.silero_vad import SileroVad  # noqa: E402
from services.speaker_encoder import ResemblyzerEncoder  # noqa: E402
from tests.asr.conversations import MANIFEST, layout, load_set, render, score  # noqa: E402

GRID = {
    "SAME_SEGMENT": (0.6, 0.65, 0.7),
    "SAME_SPEAKER": (0.74, 0.76, 0.78, 0.8),
    "SWITCH": (0.1, 0.2, 0.3),
    "PASSES": (1, 2),
    "SHORT_SECONDS": (1.0, 1.5),
}


class CachedEncoder:
    """The encoder with its embeddings kept by clip content, so a grid over thresholds embeds once."""

    def __init__(self) -> None:
        self.encoder = ResemblyzerEncoder()
        self.encoder.load()
        self.cache: dict[bytes, np.ndarray] = {}

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        keys = [clip.tobytes() for clip in clips]
        missing = [clip for key, clip in zip(keys, clips, strict=True) if key not in self.cache]
        for clip, vector in zip(missing, self.encoder.embed(missing) if missing else [], strict=True):
            self.cache[clip.tobytes()] = vector
        return np.stack([self.cache[key] for key in keys]) if keys else np.zeros((0, 256), dtype=np.float32)


def measure(encoder: Any, rendered: list[tuple[dict[str, Any], np.ndarray, list[Any], list[Any]]]) -> dict[str, Any]:
    counted, exact, right, right_fixed, steady, rows = 0, 0, [], [], [], []
    for plan, audio, truth, spans in rendered:
        speakers = len(plan["voices"])
        free = Diarizer.turns_blocking(encoder, audio, spans, SpeakerOptions())
        fixed = Diarizer.turns_blocking(encoder, audio, spans, SpeakerOptions(num_speakers=speakers))
        found = len({t.speaker for t in free})
        counted += found == speakers
        exact += len({t.speaker for t in fixed}) == speakers
        right.append(score(truth, [(t.speaker, t.start, t.end) for t in free])["right"])
        scored = score(truth, [(t.speaker, t.start, t.end) for t in fixed])
        right_fixed.append(scored["right"])
        steady.append(scored["steady"])
        rows.append((plan["name"], speakers, found, right[-1], right_fixed[-1]))
    n = len(rendered)
    return {
        "count": counted / n,
        "right": float(np.mean(right)),
        "right_fixed": float(np.mean(right_fixed)),
        "exact": exact / n,
        "steady": float(np.mean(steady)),
        "rows": rows,
    }


def prepare(set_name: str) -> list[tuple[dict[str, Any], np.ndarray, list[Any], list[Any]]]:
    vad = SileroVad()  # the service's default VAD settings
    out = []
    for plan in load_set(set_name):
        audio, truth = render(plan)
        out.append((plan, audio, truth, vad(audio)))
    return out


def tune(encoder: CachedEncoder) -> None:
    import asr.diarize

    dev = prepare("dev")
    pauses = {audio.tobytes(): asr.diarize.PAUSES(audio) for _, audio, _, _ in dev}
    asr.diarize.PAUSES = lambda audio: pauses[audio.tobytes()]  # type: ignore[assignment,misc]
    results = []
    for values in itertools.product(*GRID.values()):
        for name, value in zip(GRID, values, strict=True):
            setattr(speaker_clusters, name, value)
        m = measure(encoder, dev)
        results.append((m["count"], (m["right"] + m["steady"]) / 2, values))
        print(
            " ".join(f"{k}={v}" for k, v in zip(GRID, values, strict=True)),
            f"count {m['count']:.0%} right {m['right']:.1%} right (num_speakers) {m['right_fixed']:.1%}"
            f" one label {m['steady']:.0%}",
            flush=True,
        )
    best = max(results)
    print(
        "best on dev (count, then the mean of speech right and one label per turn):",
        dict(zip(GRID, best[-1], strict=True)),
    )


def main() -> None:
    if "--write" in sys.argv:
        sets = {name: layout(name) for name in ("dev", "eval")}
        MANIFEST.write_text(json.dumps(sets, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {MANIFEST}")
        return
    encoder = CachedEncoder()
    if "--tune" in sys.argv:
        tune(encoder)
        return
    table = {}
    for set_name in ("dev", "eval"):
        started = time.perf_counter()
        table[set_name] = measure(encoder, prepare(set_name))
        table[set_name]["seconds"] = time.perf_counter() - started
        for name, speakers, found, right, right_fixed in table[set_name]["rows"]:
            print(
                f"{name}  {speakers} speakers, found {found}, right {right:.0%} (num_speakers given: {right_fixed:.0%})"
            )
    print(
        "\nset   count right  speech right  speech right (num_speakers)  num_speakers obeyed  one label per turn"
        "  seconds"
    )
    for set_name, m in table.items():
        print(
            f"{set_name:<5} {m['count']:10.0%}  {m['right']:12.1%}  {m['right_fixed']:27.1%}  {m['exact']:19.0%}"
            f"  {m['steady']:18.0%}  {m['seconds']:7.1f}"
        )


if __name__ == "__main__":
    main()
