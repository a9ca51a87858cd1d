"""One pull: list a repo's files on the first hub that has it, check the disk, download each file into
staging, check its size and sha256 against what the hub published, and move it into place."""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.models.hubs import SHA256, SOURCES, Hub, RemoteFile
from services.models.names import BadName, GgufName, repo_file
from services.models.store import STAGING, ModelStore, NoSpace

log = logging.getLogger("lingxi.models")
TOKEN_LIKE = re.compile(r"(hf_[A-Za-z0-9]{8,}|ms-[A-Za-z0-9-]{8,}|Bearer\s+\S+)")


class PullError(Exception):
    """A pull that failed; ``kind`` is not_found, unreachable, corrupt, no_space or failed."""

    def __init__(self, message: str, kind: str = "failed") -> None:
        super().__init__(message)
        self.message, self.kind = message, kind


@dataclass(frozen=True)
class Candidate:
    """Where a model may come from: a hub and the repo's id there."""

    source: str
    repo: str


@dataclass
class Event:
    """What a pull reports as it goes: ``stage`` is listing, file, verifying or done."""

    stage: str
    file: str = ""
    sha256: str | None = None
    total: int = 0
    completed: int = 0


Reporter = Callable[[Event], None]
Selector = Callable[[list[RemoteFile]], list[RemoteFile]]


def everything(files: list[RemoteFile]) -> list[RemoteFile]:
    return files


def matching(patterns: Sequence[str]) -> Selector:
    def select(files: list[RemoteFile]) -> list[RemoteFile]:
        chosen = [f for f in files if any(fnmatch.fnmatch(f.path, p) for p in patterns)]
        if not chosen:
            raise PullError(f"no file matches {', '.join(patterns)}", "not_found")
        return chosen

    return select


def one_gguf(quant: str) -> Selector:
    """The repo's single-file GGUF of quantisation ``quant`` (case-insensitive), not a projector."""

    def select(files: list[RemoteFile]) -> list[RemoteFile]:
        ggufs = [f for f in files if f.path.lower().endswith(".gguf") and "mmproj" not in f.path.lower()]
        wanted = [f for f in ggufs if quant.lower() in Path(f.path).name.lower()]
        whole = [f for f in wanted if not re.search(r"-\d{5}-of-\d{5}\.gguf$", f.path)]
        if not whole:
            tags = sorted({Path(f.path).stem.rsplit("-", 1)[-1].rsplit(".", 1)[-1] for f in ggufs})
            hint = f"; it has {', '.join(tags)}" if tags else "; it has no GGUF file"
            raise PullError(f"no single-file GGUF of quantisation {quant}{hint}", "not_found")
        return [min(whole, key=lambda f: len(f.path))]

    return select


def gguf_candidates(name: GgufName, sources: Sequence[str]) -> list[Candidate]:
    repos = {"hf": name.hf_repo, "modelscope": name.modelscope_repo}
    return [Candidate(s, repo) for s in sources if (repo := repos.get(s))]


def scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return TOKEN_LIKE.sub("***", text)


def classify(exc: BaseException) -> str:
    name = type(exc).__name__
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 404 or "NotFound" in name or "NotExist" in name:
        return "not_found"
    if isinstance(exc, ConnectionError | TimeoutError) or "Connect" in name or "Timeout" in name:
        return "unreachable"
    return "failed"


def client(source: str) -> Hub:
    try:
        return SOURCES[source]()
    except ImportError as exc:
        raise PullError(f"the {source} client is not installed ({exc}); pip install 'lingxi[embedded]'") from None


def pull(
    name: str,
    candidates: Sequence[Candidate],
    select: Selector = everything,
    *,
    store: ModelStore | None = None,
    revision: str | None = None,
    report: Reporter | None = None,
    hubs: dict[str, Hub] | None = None,
) -> list[Path]:
    """Fetch into ``{models dir}/{name}`` from the first candidate whose hub lists the repo; the files' paths."""
    store = store or ModelStore()
    report = report or (lambda event: None)
    hubs = hubs or {}
    failures = []
    for candidate in candidates:
        try:
            hub = hubs.get(candidate.source) or client(candidate.source)
        except PullError as exc:  # the next hub's client may be there
            failures.append((exc.kind, exc.message))
            continue
        secrets = hub.secrets()
        report(Event("listing", candidate.repo))
        try:
            resolved, listed = hub.files(candidate.repo, revision)
        except Exception as exc:  # the next hub may have it
            kind = classify(exc)
            failures.append((kind, scrub(f"{hub.source} ({hub.endpoint}): {type(exc).__name__}: {exc}", secrets)))
            log.warning("%s", failures[-1][1])
            continue
        try:
            return fetch(name, hub, candidate.repo, resolved, listed, select, store, report)
        except PullError as exc:
            raise PullError(scrub(exc.message, secrets), exc.kind) from None
        except BadName as exc:
            raise PullError(str(exc), "failed") from None
        except NoSpace as exc:
            raise PullError(str(exc), "no_space") from None
        except Exception as exc:
            message = scrub(f"{hub.source} ({hub.endpoint}): {type(exc).__name__}: {exc}", secrets)
            raise PullError(message, classify(exc)) from None
    kinds = {kind for kind, _ in failures}
    kind = "not_found" if kinds == {"not_found"} else "unreachable" if "unreachable" in kinds else "failed"
    raise PullError("; ".join(message for _, message in failures) or "no model source configured", kind)


def fetch(
    name: str,
    hub: Hub,
    repo: str,
    revision: str,
    listed: list[RemoteFile],
    select: Selector,
    store: ModelStore,
    report: Reporter,
) -> list[Path]:
    files = select(listed)
    staging = store.staging_dir(hub.source, repo, name)
    plan = []
    for file in files:
        final = store.final_path(name, repo_file(file.path))
        part = staging.joinpath(*repo_file(file.path).parts).with_name(f"{Path(file.path).name}.{tag(file)}.part")
        plan.append((file, final, part))
    todo = [(f, final, part) for f, final, part in plan if not done_already(final, f)]
    needed = sum((f.size or 0) - (part.stat().st_size if part.exists() else 0) for f, _, part in todo)
    store.ensure_space(max(needed, 0))
    for file, final, part in todo:
        part.parent.mkdir(parents=True, exist_ok=True)
        total = file.size or 0

        def progress(completed: int, file: RemoteFile = file, total: int = total) -> None:
            report(Event("file", file.path, file.sha256, total, completed))

        digest = hub.download(repo, revision, file, part, progress)
        report(Event("verifying", file.path, file.sha256, total, total))
        check(file, part, digest)
        store.publish(part, final)
    if select is everything:
        store.mark_complete(name, f"{hub.source}:{repo}@{revision}\n")
    report(Event("done", name))
    remove_empty(store.root / STAGING)
    return [final for _, final, _ in plan]


def tag(file: RemoteFile) -> str:
    """Part files carry the hash they must reach, so a changed upstream file never resumes a stale one."""
    return (file.sha256 or "git")[:16]


def done_already(final: Path, file: RemoteFile) -> bool:
    return final.is_file() and (file.size is None or final.stat().st_size == file.size)


def check(file: RemoteFile, part: Path, digest: str) -> None:
    size = part.stat().st_size
    if file.size is not None and size != file.size:
        part.unlink()
        message = f"{file.path}: got {size} bytes, the hub lists {file.size}; the download was discarded"
        raise PullError(message, "corrupt")
    expected = (file.sha256 or "").lower()
    if SHA256.fullmatch(expected) and digest != expected:
        part.unlink()
        raise PullError(
            f"{file.path}: sha256 {digest} does not match the hub's {expected}; the download was discarded", "corrupt"
        )


def remove_empty(root: Path) -> None:
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
