"""Answers with sources benchmark: on bench/websearch_web.py's labelled set, how often the answering page
ranks first in websearch's ``/search/web`` and how often the llm's answer (``web_search_options`` on
``/v1/chat/completions``, through the ``openai`` SDK) cites it.

    .venv/bin/python bench/web_answer.py [--limit 47] [--max-tokens 512]

Starts (all on 127.0.0.1): a throw-away PostgreSQL cluster, the real embedding service, a page server for
tests/data/websearch/pages, a server speaking SearXNG's JSON API (tests/websearch/searxng.py), the websearch
service and the llm service on its embedded default (Qwen2.5-Coder-0.5B-Instruct) pointed at websearch.
The questions are asked a few at once, as concurrent users would.
"""

from __future__ import annotations

import argparse
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

from websearch_web import labelled_set, page_server, websearch_env  # noqa: E402

from services.postgres import LocalPostgres  # noqa: E402
from tests.conftest import free_port, running_service, serve_routes, world_readable_tmpdir  # noqa: E402
from tests.websearch.searxng import FakeSearxng  # noqa: E402

CJK = re.compile(r"[\u4e00-\u9fff]")
LETTER = re.compile(r"[A-Za-z\u4e00-\u9fff]")
MARKER = re.compile(r"\[\d+\]")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="ask only the first N questions (0: all)")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--every", type=int, default=1, help="ask every Nth question (a quick mixed sample)")
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    cases = labelled_set()[:: args.every]
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
                {"LLM_WEBSEARCH_URL": websearch, "LLM_EMBEDDING_URL": "", "LLM_ASR_URL": "", "LLM_TTS_URL": ""},
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
            )
            message = completion.choices[0].message
            urls = [a.url_citation.url for a in message.annotations or []]
            letters = LETTER.findall(message.content or "")
            words = LETTER.findall(MARKER.sub("", message.content or ""))
            real = len(words) >= 20  # an answer, not a list of numbers or the question said back
            # the llm appends " [n]" only to an answer that cites nothing: what remains is the model's own
            own = MARKER.findall(re.sub(r" \[\d+\]$", "", message.content or ""))
            own_urls = urls if own else []
            return {
                "lang": query["lang"],
                "first": bool(top) and top[0]["url"] == answer_url,
                "cited": answer_url in urls and real,
                "own": answer_url in own_urls and real,
                "any": bool(urls),
                "chinese": len(CJK.findall(message.content or "")) / max(1, len(letters)) >= 0.5,
                "seconds": time.perf_counter() - started,
                "query": query["query"],
                "content": message.content,
            }

        def tried(case: tuple[dict, list[str]]) -> dict:
            try:
                return ask(case)
            except openai.APIError as exc:  # counted as not cited, and shown
                empty = {"first": False, "cited": False, "own": False, "any": False, "chinese": False, "seconds": 0.0}
                return {**empty, "lang": case[0]["lang"], "query": case[0]["query"], "content": f"ERROR {exc}"}

        with ThreadPoolExecutor(args.parallel) as pool:
            rows = list(pool.map(tried, cases))
    for row in rows:
        mark = "cited" if row["cited"] else ("other" if row["any"] else "none ")
        print(f"{mark} {row['lang']} {row['query']!r}: {row['content'][:300]!r}")
    print(
        "\n| questions | answering page first | answer cites it | the model's own [n] cites it | cites any source "
        "| Chinese answer |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    groups = {lang: [r for r in rows if r["lang"] == lang] for lang in sorted({r["lang"] for r in rows})}
    for name, group in [*groups.items(), ("all", rows)]:
        share = {key: sum(r[key] for r in group) / len(group) for key in ("first", "cited", "own", "any", "chinese")}
        print(
            f"| {name} ({len(group)}) | {share['first']:.0%} | {share['cited']:.0%} | {share['own']:.0%} "
            f"| {share['any']:.0%} | {share['chinese']:.0%} |"
        )
    seconds = sorted(r["seconds"] for r in rows)
    print(f"\nanswer time: p50 {statistics.median(seconds):.1f} s, max {seconds[-1]:.1f} s ({args.parallel} at once)")


if __name__ == "__main__":
    main()
