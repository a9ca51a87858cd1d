"""Answers with sources benchmark: on a labelled set, how often the answering page ranks first in websearch's
``/search/web`` and how often the llm's answer (``web_search_options`` on ``/v1/chat/completions``, through the
``openai`` SDK) cites it.

    .venv/bin/python bench/web_answer.py --split dev [--every 2] [--parallel 2] [--max-tokens 256]

The set is bench/websearch_web.py's labelled set cut in two by each query's ``split`` in
tests/data/websearch/queries.json: ``dev`` (the prompt and the attribution are tuned on it) and ``eval``
(reported, never tuned on), which also holds the questions of tests/data/websearch/web_answer_fresh.json,
written later and differently (whole questions, their 5 results chosen by hand, a page's other-language
twin never among them).

Starts (all on 127.0.0.1): a throw-away PostgreSQL cluster, the real embedding service, a page server for
tests/data/websearch/pages, a server speaking SearXNG's JSON API (tests/websearch/searxng.py), the websearch
service and the llm service on its embedded default (Qwen2.5-Coder-0.5B-Instruct) pointed at websearch and at
the embedding service (which attributes sentences by meaning). Besides the table it prints how many of the
cited sources are not the answering page.
The questions are asked a few at once, as concurrent users would.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import openai

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from websearch_web import DATA, labelled_set, page_server, websearch_env  # noqa: E402

from llm.citations import terms  # noqa: E402
from llm.web_answer import PROMPTS  # noqa: E402
from services.postgres import LocalPostgres  # noqa: E402
from tests.conftest import free_port, running_service, serve_routes, world_readable_tmpdir  # noqa: E402
from tests.websearch.searxng import FakeSearxng  # noqa: E402

CJK = re.compile(r"[\u4e00-\u9fff]")
CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
LETTER = re.compile(r"[A-Za-z\u4e00-\u9fff]")
MARKER = re.compile(r"\[\d+\]")
ANSWERED_TERMS = 5  # an answer says at least this many words (or Chinese character pairs) the question did not
COPIED_CHARS, COPIED_WORDS = 6, 4  # this long a run of the worked example's text in an answer is copied from it


def runs(text: str) -> set[str]:
    """Runs of ``COPIED_CHARS`` Chinese characters and of ``COPIED_WORDS`` English words in ``text``."""
    found = set()
    for chinese in CJK_RUN.findall(text):
        found |= {chinese[i : i + COPIED_CHARS] for i in range(len(chinese) - COPIED_CHARS + 1)}
    words = re.findall(r"[a-z]+", text.lower())
    return found | {" ".join(words[i : i + COPIED_WORDS]) for i in range(len(words) - COPIED_WORDS + 1)}


EXAMPLES = set().union(*(runs(f"{p.example_sources} {p.example_answer}") for p in PROMPTS.values()))


def copies_the_example(answer: str, shown: str) -> bool:
    """The answer repeats the worked example's text that its own sources do not have."""
    return bool((runs(answer) & EXAMPLES) - runs(shown))


def answer_set(split: str) -> list[tuple[dict, list[str]]]:
    """The labelled questions of ``split`` (dev, eval or all), each with the 5 pages the backend answers."""
    cases = [case for case in labelled_set() if split in ("all", case[0].get("split"))]
    if split in ("all", "eval"):
        rng = random.Random(41)
        for query in json.loads((DATA / "web_answer_fresh.json").read_text()):
            results = list(query["others"])
            results.insert(rng.randrange(5), query["relevant"][0])
            cases.append(({**query, "split": "eval"}, results))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="ask only the first N questions (0: all)")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, help="sent with each question (default: none, the llm's own)")
    parser.add_argument("--every", type=int, default=1, help="ask every Nth question (a quick mixed sample)")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--split", choices=["dev", "eval", "all"], default="dev")
    parser.add_argument("--rows", type=Path, help="write each answer with its sources here (JSON)")
    args = parser.parse_args()
    cases = answer_set(args.split)[:: args.every]
    cases = cases[: args.limit] if args.limit else cases
    with ExitStack() as stack:
        root = world_readable_tmpdir("lingxi-bench-answer-")
        stack.callback(shutil.rmtree, root, True)
        database = LocalPostgres(root / "postgres", port=free_port())
        database.start()
        stack.callback(database.stop)
        embedding = stack.enter_context(running_service("embedding"))
        pages_stack, pages = page_server((0, 0))
        stack.enter_context(pages_stack)
        searxng = FakeSearxng(stack.enter_context(serve_routes()))
        websearch = stack.enter_context(
            running_service("websearch", websearch_env(database.url, root, embedding, pages.netloc, searxng.url))
        )
        llm = stack.enter_context(
            running_service(
                "llm",
                {"LLM_WEBSEARCH_URL": websearch, "LLM_EMBEDDING_URL": embedding, "LLM_ASR_URL": "", "LLM_TTS_URL": ""},
            )
        )
        for query, results in cases:
            searxng.answer(query["query"], [(pages.url(f"/set/{name}"), "", "") for name in results])
        search = stack.enter_context(httpx.Client(base_url=websearch, timeout=120, trust_env=False))
        client = openai.OpenAI(base_url=f"{llm}/v1", api_key="none", timeout=600, max_retries=0)

        def ask(case: tuple[dict, list[str]]) -> dict:
            query, _ = case
            answer_url = pages.url(f"/set/{query['relevant'][0]}")
            top = search.get("/search/web", params={"q": query["query"], "limit": 5}).json()["results"]
            started = time.perf_counter()
            completion = client.chat.completions.create(
                model="qwen2.5-coder:0.5b",
                messages=[{"role": "user", "content": query["query"]}],
                web_search_options={},
                max_tokens=args.max_tokens,
                **({} if args.temperature is None else {"temperature": args.temperature}),
            )
            message = completion.choices[0].message
            urls = [a.url_citation.url for a in message.annotations or []]
            letters = LETTER.findall(message.content or "")
            words = LETTER.findall(MARKER.sub("", message.content or ""))
            new = terms(MARKER.sub(" ", message.content or "")) - terms(query["query"])
            real = len(words) >= 20 and len(new) >= ANSWERED_TERMS  # an answer, not the question said back
            return {
                "lang": query["lang"],
                "split": query["split"],
                "first": bool(top) and top[0]["url"] == answer_url,
                "cited": answer_url in urls and real,
                "real": real,
                "any": bool(urls),
                "chinese": len(CJK.findall(message.content or "")) / max(1, len(letters)) >= 0.5,
                "copied": copies_the_example(
                    message.content or "", " ".join(f"{r['title']} {r['snippet']}" for r in top)
                ),
                "seconds": time.perf_counter() - started,
                "urls": list(dict.fromkeys(urls)),
                "answer_url": answer_url,
                "query": query["query"],
                "content": message.content,
                "sources": [{key: row[key] for key in ("title", "url", "snippet")} for row in top],
            }

        def tried(case: tuple[dict, list[str]]) -> dict:
            try:
                return ask(case)
            except openai.APIError as exc:  # counted as not cited, and shown
                empty = {"first": False, "cited": False, "real": False, "any": False, "chinese": False, "seconds": 0.0}
                query = case[0]
                return {
                    **empty,
                    "lang": query["lang"],
                    "split": query["split"],
                    "query": query["query"],
                    "content": f"ERROR {exc}",
                }

        with ThreadPoolExecutor(args.parallel) as pool:
            rows = list(pool.map(tried, cases))
    if args.rows:
        args.rows.write_text(json.dumps(rows, ensure_ascii=False, indent=1))
    for row in rows:
        mark = "cited" if row["cited"] else ("other" if row["any"] else "none ")
        print(f"{mark} {row['split']} {row['lang']} {row['query']!r}: {row['content'][:300]!r}")
    for split in sorted({r["split"] for r in rows}):
        table(split, [r for r in rows if r["split"] == split])
    cited = [(url, r["answer_url"]) for r in rows for url in r.get("urls", [])]
    wrong = sum(url != answer for url, answer in cited)
    print(
        f"\ncited sources that are not the answering page: {wrong} of {len(cited)} ({wrong / max(1, len(cited)):.0%})"
    )
    copied = [r["query"] for r in rows if r.get("copied")]
    print(f"answers repeating the worked example's text: {len(copied)} {copied}")
    seconds = sorted(r["seconds"] for r in rows)
    print(f"\nanswer time: p50 {statistics.median(seconds):.1f} s, max {seconds[-1]:.1f} s ({args.parallel} at once)")


def table(split: str, rows: list[dict]) -> None:
    print(f"\n{split}:\n")
    print("| questions | answering page first | answer cites it | an answer | cites any source | Chinese answer |")
    print("|---|---:|---:|---:|---:|---:|")
    groups = {lang: [r for r in rows if r["lang"] == lang] for lang in ("en", "zh", "cross")}
    for name, group in [*groups.items(), ("all", rows)]:
        if group:
            share = {
                key: sum(r[key] for r in group) / len(group) for key in ("first", "cited", "real", "any", "chinese")
            }
            print(
                f"| {name} ({len(group)}) | {share['first']:.0%} | {share['cited']:.0%} | {share['real']:.0%} "
                f"| {share['any']:.0%} | {share['chinese']:.0%} |"
            )


if __name__ == "__main__":
    main()
