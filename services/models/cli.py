"""``lingxi models pull|list|rm``: model weights into the models directory."""

from __future__ import annotations

import argparse
import shutil
import sys
from typing import Any

from services.models.hubs import configured_sources
from services.models.names import BadName, local_name, ollama_name, repo_id
from services.models.pull import Candidate, Event, PullError, everything, gguf_candidates, matching, one_gguf, pull
from services.models.store import ModelStore

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def add_commands(commands: Any) -> None:
    models = commands.add_parser("models", help="pull, list and remove model weights (Hugging Face or ModelScope)")
    verbs = models.add_subparsers(dest="verb", required=True)
    pull_cmd = verbs.add_parser("pull", help="download a model into the models directory")
    pull_cmd.add_argument(
        "name", nargs="?", help="owner/repo, hf.co/owner/repo[:quant], or a familiar name such as qwen2.5:0.5b"
    )
    pull_cmd.add_argument(
        "--source",
        choices=["hf", "modelscope"],
        help="the only hub to ask (default: LINGXI_MODEL_SOURCES, hf,modelscope: Hugging Face, then ModelScope)",
    )
    pull_cmd.add_argument("--include", action="append", default=[], help="only files matching this glob (repeatable)")
    pull_cmd.add_argument("--revision", help="branch, tag or commit (default: the hub's main branch)")
    pull_cmd.add_argument("--profile", choices=["production"], help="every model the .env's production set selects")
    verbs.add_parser("list", help="the models pulled, with their sizes")
    rm_cmd = verbs.add_parser("rm", help="delete a pulled model (and any unfinished download of it)")
    rm_cmd.add_argument("name")


class Bar:
    """One progress bar per file, drawn only when stderr is a terminal."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.file = ""
        self.tty = sys.stderr.isatty()

    def __call__(self, event: Event) -> None:
        if event.stage == "listing":
            print(f"looking up {event.file} ...", file=sys.stderr, flush=True)
        if event.stage != "file" or not self.tty:
            if event.stage in ("verifying", "done"):
                self.close()
            return
        if event.file != self.file:
            from tqdm import tqdm

            self.close()
            self.file = event.file
            size = shutil.get_terminal_size()  # 80x24 where the terminal reports none (tqdm would draw no bar)
            self.bar = tqdm(
                total=event.total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=event.file,
                ncols=size.columns,
                nrows=size.lines,
            )
        self.bar.update(event.completed - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar, self.file = None, ""


def pull_one(name: str, source: str | None, include: list[str], revision: str | None, store: ModelStore) -> None:
    sources = configured_sources(source)
    if name.lower().startswith(("hf.co/", "huggingface.co/")) or ":" in name:
        gguf = ollama_name(name)
        candidates, select = gguf_candidates(gguf, sources), one_gguf(gguf.quant)
        target = gguf.hf_repo
    else:
        target = repo_id(name)
        candidates = [Candidate(s, target) for s in sources]
        select = matching(include) if include else everything
    if not candidates:
        raise PullError(f"{name} has no repo on {', '.join(sources)}", "not_found")
    paths = pull(target, candidates, select, store=store, revision=revision, report=Bar())
    print(f"{name}: {len(paths)} file(s) in {store.repo_dir(target)}", flush=True)


def run(args: argparse.Namespace) -> int:
    store = ModelStore()
    try:
        if args.verb == "list":
            rows = store.listing()
            print(f"{'model':<50} {'files':>5} {'size':>10}")
            for row in rows:
                print(f"{row.name:<50} {row.files:>5} {row.size / 1e9:>8.2f}GB")
            return 0
        if args.verb == "rm":
            if not store.remove(local_name(args.name)):
                print(f"lingxi models rm: {args.name} is not in {store.root}", file=sys.stderr)
                return EXIT_FAILED
            print(f"removed {args.name}")
            return 0
        if args.profile:
            from services.models.manifest import pull_profile

            pull_profile(args.profile, args.source, store, Bar())
            return 0
        if not args.name:
            print("lingxi models pull: give a model name or --profile production", file=sys.stderr)
            return EXIT_BAD_INPUT
        pull_one(args.name, args.source, args.include, args.revision, store)
        return 0
    except (BadName, ValueError) as exc:
        print(f"lingxi models: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PullError as exc:
        print(f"lingxi models: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\ninterrupted; the next pull resumes where this one stopped", file=sys.stderr)
        return 130
