"""asr diarization on the held-out sets: tune on ``dev`` and ``dev2``, measure on ``eval`` and ``eval2``
(tests/asr/conversations.py).

    .venv/bin/python bench/diarize_sets.py            # dev, dev2 and eval, side by side
    .venv/bin/python bench/diarize_sets.py --sets eval2  # only the sets named (comma-separated)
    .venv/bin/python bench/diarize_sets.py --tune     # the grid of thresholds, scored on dev and dev2 only
    .venv/bin/python bench/diarize_sets.py --tune-pitch  # the same for the pitch cue and the folding it guards
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

from asr import speaker_clusters, speaker_pitch  # noqa: E402
from asr.diarize import Diarizer, SpeakerOptions  # noqa: E402
from asr.engines.silero_vad import SileroVad  # noqa: E402
from services import pitch  # noqa: E402
from services.speaker_encoder import ResemblyzerEncoder  # noqa: E402
from tests.asr.conversations import MANIFEST, layout, load_set, render, score  # noqa: E402

GRID = {
    "SAME_SEGMENT": (0.65, 0.7, 0.75),
    "SAME_SPEAKER": (0.78, 0.88, 0.92, 1.01),  # 1.01: every segment starts as a speaker of its own
    "SWITCH": (0.1, 0.2, 0.3),
    "MIN_SPEAKER_SECONDS": (0.0, 2.0, 3.0, 4.0),
    "MERGE_SPEAKERS": (0.8, 0.83, 0.86, 1.01),  # 1.01: never merge
}
PITCH_GRID = {
    "PERIODIC": (0.3, 0.4, 0.5),
    "APART": (3.5, 4.0, 4.5, 5.0),  # semitones
    "SAME_SPEAKER": (0.88,),
    "MERGE_SPEAKERS": (0.8, 0.83),
    "MIN_SPEAKER_SECONDS": (2.0, 3.0),
}
MODULES = {"PERIODIC": pitch, "APART": speaker_pitch}  # the rest are in speaker_clusters
DEVELOPMENT = ("dev", "dev2")
ALL_SETS = (*DEVELOPMENT, "eval", "eval2")


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


def measure(
    encoder: Any, rendered: list[tuple[dict[str, Any], np.ndarray, list[Any], list[Any]]], *, fixed_too: bool = True
) -> dict[str, Any]:
    """The scores of one set; ``fixed_too=False`` leaves out the runs with ``num_speakers`` given (their
    columns are then 0)."""
    counted, exact, right, right_fixed, steady, rows = 0, 0, [], [], [], []
    for plan, audio, truth, spans in rendered:
        speakers = len(plan["voices"])
        free = Diarizer.turns_blocking(encoder, audio, spans, SpeakerOptions())
        found = len({t.speaker for t in free})
        counted += found == speakers
        right.append(score(truth, [(t.speaker, t.start, t.end) for t in free])["right"])
        right_fixed.append(0.0)
        if fixed_too:
            fixed = Diarizer.turns_blocking(encoder, audio, spans, SpeakerOptions(num_speakers=speakers))
            exact += len({t.speaker for t in fixed}) == speakers
            scored = score(truth, [(t.speaker, t.start, t.end) for t in fixed])
            right_fixed[-1] = scored["right"]
            steady.append(scored["steady"])
        rows.append((plan["name"], speakers, found, right[-1], right_fixed[-1]))
    n = len(rendered)
    return {
        "count": counted / n,
        "right": float(np.mean(right)),
        "right_fixed": float(np.mean(right_fixed)),
        "exact": exact / n,
        "steady": float(np.mean(steady)) if steady else 0.0,
        "rows": rows,
    }


def prepare(set_name: str) -> list[tuple[dict[str, Any], np.ndarray, list[Any], list[Any]]]:
    vad = SileroVad()  # the service's default VAD settings
    out = []
    for plan in load_set(set_name):
        audio, truth = render(plan)
        out.append((plan, audio, truth, vad(audio)))
    return out


def tune(encoder: CachedEncoder, grid: dict[str, tuple[float, ...]]) -> None:
    """Every setting of ``grid`` scored on the development sets together: first the speaker count found
    (without ``num_speakers``); among the settings tied best on it, the mean of speech attributed right
    and of turns with one label inside (with ``num_speakers`` given)."""
    import asr.diarize

    dev = [conversation for name in DEVELOPMENT for conversation in prepare(name)]
    pauses = {audio.tobytes(): asr.diarize.PAUSES(audio) for _, audio, _, _ in dev}
    asr.diarize.PAUSES = lambda audio: pauses[audio.tobytes()]  # type: ignore[assignment,misc]
    track, tracked = speaker_pitch.track, {}

    def cached_track(clip: np.ndarray) -> np.ndarray:
        key = (clip.tobytes(), pitch.PERIODIC)
        if key not in tracked:
            tracked[key] = track(clip)
        return tracked[key]

    speaker_pitch.track = cached_track  # type: ignore[assignment]
    GRID = grid  # noqa: N806

    def use(values: tuple[Any, ...]) -> None:
        for name, value in zip(GRID, values, strict=True):
            setattr(MODULES.get(name, speaker_clusters), name, value)

    counts = {}
    for values in itertools.product(*GRID.values()):
        use(values)
        m = measure(encoder, dev, fixed_too=False)
        counts[values] = m["count"]
        print(" ".join(f"{k}={v}" for k, v in zip(GRID, values, strict=True)), f"count {m['count']:.1%}", flush=True)
    tied = [values for values, count in counts.items() if count == max(counts.values())]
    print(f"{len(tied)} settings find the count in {max(counts.values()):.1%}; with num_speakers given:")
    quality = {}
    for values in tied:
        use(values)
        m = measure(encoder, dev)
        quality[values] = (m["right"] + m["steady"]) / 2
        print(
            " ".join(f"{k}={v}" for k, v in zip(GRID, values, strict=True)),
            f"right {m['right']:.1%} right (num_speakers) {m['right_fixed']:.1%} one label {m['steady']:.1%}",
            flush=True,
        )
    best = max(tied, key=lambda values: quality[values])
    print(f"best on {' + '.join(DEVELOPMENT)}:", dict(zip(GRID, best, strict=True)))


def main() -> None:
    if "--write" in sys.argv:
        sets = {name: layout(name) for name in ALL_SETS}
        MANIFEST.write_text(json.dumps(sets, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {MANIFEST}")
        return
    encoder = CachedEncoder()
    if "--tune" in sys.argv or "--tune-pitch" in sys.argv:
        tune(encoder, PITCH_GRID if "--tune-pitch" in sys.argv else GRID)
        return
    named = sys.argv[sys.argv.index("--sets") + 1].split(",") if "--sets" in sys.argv else [*DEVELOPMENT, "eval"]
    table = {}
    for set_name in named:
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
