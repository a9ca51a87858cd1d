"""Does voice pitch tell apart the speakers the GE2E encoder takes for one? Measured with the true turns.

    .venv/bin/python bench/diarize_pitch.py              # dev and dev2 (the development sets)
    .venv/bin/python bench/diarize_pitch.py --sets eval2  # other sets, comma-separated
    .venv/bin/python bench/diarize_pitch.py --cost       # diarization time with the pitch cue and without

Per conversation and true speaker: the GE2E centre of their main turns (each turn of at least 1 s
embedded whole from the mixed audio, duration-weighted mean), their median pitch
(``asr.speaker_pitch`` over the same turns) and, as a third cue tried, their spectral envelope (the mean
MFCC 1–19 of frames loud enough to be speech). Pairs of different speakers of one conversation are
compared with pairs of the same speaker (odd turns against even turns): how alike their centres are, how
far apart their pitches are in semitones, and how far apart their envelopes are (Euclidean).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr import speaker_pitch  # noqa: E402
from asr.speaker_clusters import MERGE_SPEAKERS, unit  # noqa: E402
from services.speaker_encoder import ResemblyzerEncoder, mel_frames  # noqa: E402
from tests.asr.conversations import SAMPLE_RATE, load_set, render  # noqa: E402

GE2E_FOLDS = MERGE_SPEAKERS  # speakers whose centres are at least this alike are folded into one
APART = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)  # semitones


def envelope(clip: np.ndarray) -> np.ndarray:
    """MFCC 1–19 (DCT of the log mel bands) of the frames with at least a tenth of the clip's loudest energy."""
    from scipy.fft import dct

    bands = mel_frames(clip)
    energy = bands.sum(axis=1)
    return dct(np.log(bands[energy >= 0.1 * energy.max()] + 1e-10), norm="ortho", axis=1)[:, 1:20]


def speaker_halves(audio: np.ndarray, turns: list, encoder: ResemblyzerEncoder) -> dict[int, list]:
    """Per speaker, [(centre, frames' log-pitch, envelope frames)] for all their main turns and for the
    odd and even ones."""
    main = [t for t in turns if not t.back_channel and t.end - t.start >= 1.0]
    clips = [audio[int(t.start * SAMPLE_RATE) : int(t.end * SAMPLE_RATE)] for t in main]
    vectors = encoder.embed(clips)
    pitches = [speaker_pitch.track(clip) for clip in clips]
    envelopes = [envelope(clip) for clip in clips]
    out: dict[int, list] = {}
    for speaker in sorted({t.speaker for t in main}):
        mine = [i for i, t in enumerate(main) if t.speaker == speaker]
        groups = [mine, mine[0::2], mine[1::2]] if len(mine) >= 2 else [mine]
        out[speaker] = [
            (
                unit(sum(vectors[i] * (main[i].end - main[i].start) for i in g)),
                np.concatenate([pitches[i] for i in g]),
                np.concatenate([envelopes[i] for i in g]).mean(axis=0),
            )
            for g in groups
        ]
    return out


def semitones_apart(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < speaker_pitch.MIN_VOICED or b.size < speaker_pitch.MIN_VOICED:
        return 0.0
    return abs(float(np.median(a)) - float(np.median(b)))


def cost(names: list[str], encoder: ResemblyzerEncoder) -> None:
    """``Diarizer.turns_blocking`` (free count) timed over the sets' conversations, best of three, with
    the pitch cue and with its tracker replaced by one that hears nothing (the diarizer without it)."""
    from asr.diarize import Diarizer, SpeakerOptions
    from asr.engines.silero_vad import SileroVad

    vad = SileroVad()
    rendered = [render(plan)[0] for name in names for plan in load_set(name)]
    spans = [vad(audio) for audio in rendered]
    track = speaker_pitch.track
    deaf = lambda clip: np.zeros(0, dtype=np.float32)  # noqa: E731
    speaker_pitch.track(rendered[0])  # imports and first-call costs out of the timing
    timed = {}
    for label, tracker in (("without pitch", deaf), ("with pitch", track), ("without pitch again", deaf)):
        speaker_pitch.track = tracker  # type: ignore[assignment]
        best = []
        for audio, found in zip(rendered, spans, strict=True):
            times = []
            for _ in range(3):
                started = time.perf_counter()
                Diarizer.turns_blocking(encoder, audio, found, SpeakerOptions())
                times.append(time.perf_counter() - started)
            best.append(min(times))
        timed[label] = sum(best)
        print(f"{label}: {sum(best):.2f} s for {sum(a.size for a in rendered) / SAMPLE_RATE:.0f} s of audio")
    speaker_pitch.track = track  # type: ignore[assignment]
    before = (timed["without pitch"] + timed["without pitch again"]) / 2
    print(f"with pitch / without: {timed['with pitch'] / before:.2f}")


def main() -> None:
    names = sys.argv[sys.argv.index("--sets") + 1].split(",") if "--sets" in sys.argv else ["dev", "dev2"]
    encoder = ResemblyzerEncoder()
    encoder.load()
    if "--cost" in sys.argv:
        cost(names, encoder)
        return
    same, different = [], []  # (cosine, semitones apart, label)
    for name in names:
        for plan in load_set(name):
            audio, truth = render(plan)
            halves = speaker_halves(audio, truth, encoder)
            voices = plan["voices"]
            for s, groups in halves.items():
                if len(groups) == 3:
                    _, (c1, p1, e1), (c2, p2, e2) = groups
                    envelopes = float(np.linalg.norm(e1 - e2))
                    same.append((float(c1 @ c2), semitones_apart(p1, p2), voices[s]["name"], envelopes))
            for a in halves:
                for b in halves:
                    if a < b:
                        (ca, pa, ea), (cb, pb, eb) = halves[a][0], halves[b][0]
                        label = f"{voices[a]['name']}/{voices[b]['name']} ({plan['name']})"
                        envelopes = float(np.linalg.norm(ea - eb))
                        different.append((float(ca @ cb), semitones_apart(pa, pb), label, envelopes))
    print(
        f"sets {', '.join(names)}: {len(same)} same-speaker pairs (odd/even turns), {len(different)} pairs of speakers"
    )
    for title, pairs in (("same speaker", same), ("different speakers", different)):
        cos = np.array([p[0] for p in pairs])
        st = np.array([p[1] for p in pairs])
        print(
            f"{title}: cosine 5th/50th/95th pct {np.percentile(cos, 5):.2f}/{np.median(cos):.2f}/"
            f"{np.percentile(cos, 95):.2f}; semitones apart 50th/95th/max {np.median(st):.2f}/"
            f"{np.percentile(st, 95):.2f}/{st.max():.2f}"
        )
    folded = [p for p in different if p[0] >= GE2E_FOLDS]
    print(f"\npairs of different speakers GE2E folds (centres >= {GE2E_FOLDS}): {len(folded)} of {len(different)}")
    alike = [p for p in same if p[0] >= GE2E_FOLDS]
    print(
        "semitones apart | folded pairs of different speakers told apart | same-speaker pairs told apart (false"
        f" splits): all | those GE2E folds (>= {GE2E_FOLDS})"
    )
    for threshold in APART:
        told = sum(p[1] >= threshold for p in folded)
        false = sum(p[1] >= threshold for p in same)
        false_alike = sum(p[1] >= threshold for p in alike)
        shares = f"{told:3d} / {len(folded)} | {false:3d} / {len(same)} | {false_alike:3d} / {len(alike)}"
        print(f"{threshold:15.1f} | {shares}")
    print("\nfolded pairs of different speakers (cosine, pitch apart, envelopes apart):")
    for cos, st, label, env in sorted(folded, key=lambda p: -p[0]):
        print(f"  {cos:.2f}  {st:5.2f} st  {env:5.1f}  {label}")
    print("\nsame-speaker pairs furthest apart in pitch:")
    for cos, st, label, env in sorted(same, key=lambda p: -p[1])[:8]:
        print(f"  {cos:.2f}  {st:5.2f} st  {env:5.1f}  {label}")
    kept = [p[3] for p in same if p[0] >= GE2E_FOLDS and p[1] < speaker_pitch.APART]
    print(
        f"\nenvelopes apart, same-speaker pairs GE2E folds and pitch keeps together ({len(kept)}): 50th/90th/95th"
        f"/max {np.median(kept):.1f}/{np.percentile(kept, 90):.1f}/{np.percentile(kept, 95):.1f}/{max(kept):.1f};"
        f" pairs of different speakers, 5th/50th pct {np.percentile([p[3] for p in different], 5):.1f}/"
        f"{np.median([p[3] for p in different]):.1f}"
    )


if __name__ == "__main__":
    main()
