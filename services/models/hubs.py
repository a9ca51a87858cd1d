"""The two hubs, each through its own client: Hugging Face (``huggingface_hub``) and ModelScope (``modelscope``).

A hub lists a repo's files with the sizes and sha256 it publishes, and downloads one file into a
``.part`` file, resuming from the bytes already there (HTTP ``Range``). Only the configured endpoints
are contacted: ``HF_ENDPOINT`` (default https://huggingface.co, or a mirror such as
https://hf-mirror.com) and ``MODELSCOPE_ENDPOINT`` / ``MODELSCOPE_DOMAIN`` (default www.modelscope.cn).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from services.models.store import HashingWriter, sha256_of

Progress = Callable[[int], None]  # bytes of the file on disk so far
CHUNK = 1024 * 1024
SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int | None
    sha256: str | None  # None where the hub publishes none (small files kept in git)


class Hub(Protocol):
    source: str
    endpoint: str

    def files(self, repo: str, revision: str | None) -> tuple[str, list[RemoteFile]]:
        """The revision resolved (a commit where the hub says) and the repo's files."""

    def download(self, repo: str, revision: str, file: RemoteFile, part: Path, progress: Progress) -> str:
        """Fetch ``file`` into ``part`` (resuming what is there); the sha256 of the whole file."""

    def secrets(self) -> list[str]:
        """Tokens this hub sends, to keep out of messages."""


class HuggingFace:
    source = "hf"

    def __init__(self, endpoint: str | None = None, token: str | None = None) -> None:
        from huggingface_hub import HfApi, constants
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()  # lingxi draws its own bar (in a terminal) from the bytes written
        # httpx hands over (and so the .part file gets) whole chunks: at 1 MiB an interruption loses at
        # most that much, where the default 10 MiB could lose a small model's whole download
        constants.DOWNLOAD_CHUNK_SIZE = CHUNK
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
        self.token = token or os.environ.get("HF_TOKEN") or None
        self.api = HfApi(endpoint=self.endpoint, token=self.token or False)

    def files(self, repo: str, revision: str | None) -> tuple[str, list[RemoteFile]]:
        info = self.api.model_info(repo, revision=revision, files_metadata=True)
        rows = [RemoteFile(s.rfilename, s.size, s.lfs.sha256 if s.lfs else None) for s in info.siblings or []]
        return info.sha or revision or "main", rows

    def download(self, repo: str, revision: str, file: RemoteFile, part: Path, progress: Progress) -> str:
        from huggingface_hub import get_hf_file_metadata, hf_hub_url
        from huggingface_hub.file_download import http_get
        from huggingface_hub.utils import build_hf_headers

        url = hf_hub_url(repo, file.path, revision=revision, endpoint=self.endpoint)
        meta = get_hf_file_metadata(url, token=self.token or False, endpoint=self.endpoint)
        # the token goes to the hub only, not to the CDN a large file redirects to (its URL is signed)
        on_hub = urlsplit(meta.location).netloc == urlsplit(self.endpoint).netloc
        size = meta.size if meta.size is not None else file.size
        if size is not None and part.exists() and part.stat().st_size > size:
            part.unlink()  # longer than the file: not a prefix of it
        done = [part.stat().st_size if part.exists() else 0]

        def wrote(count: int) -> None:
            done[0] += count
            progress(done[0])

        writer = HashingWriter(part, wrote)
        try:
            progress(writer.resumed)
            http_get(
                meta.location,
                writer,  # type: ignore[arg-type]  # write/seek/tell/truncate, hashing as it goes
                resume_size=writer.resumed,
                headers=build_hf_headers(token=(self.token or False) if on_hub else False),
                expected_size=size,
                displayed_filename=file.path,
            )
            return writer.hexdigest()
        finally:
            writer.close()

    def secrets(self) -> list[str]:
        return [self.token] if self.token else []


class ModelScope:
    source = "modelscope"

    def __init__(self, domain: str | None = None, token: str | None = None) -> None:
        from modelscope.hub.utils.utils import resolve_endpoint
        from modelscope_hub.api import HubApi

        # MODELSCOPE_ENDPOINT or MODELSCOPE_DOMAIN as modelscope reads them (https:// unless a scheme is
        # named), else https://www.modelscope.cn
        domain = domain or os.environ.get("MODELSCOPE_ENDPOINT") or os.environ.get("MODELSCOPE_DOMAIN")
        self.endpoint = resolve_endpoint(domain).rstrip("/")
        self.token = token or os.environ.get("MODELSCOPE_API_TOKEN") or None
        self.api = HubApi(endpoint=self.endpoint, token=self.token)

    def files(self, repo: str, revision: str | None) -> tuple[str, list[RemoteFile]]:
        revision = revision or "master"
        listed = self.api.list_repo_files(repo, "model", revision=revision)
        return revision, [RemoteFile(f.path, f.size, f.sha256) for f in listed if not f.is_dir]

    def download(self, repo: str, revision: str, file: RemoteFile, part: Path, progress: Progress) -> str:
        from modelscope.hub.callback import ProgressCallback
        from modelscope.hub.file_download import get_file_download_url, http_get_model_file

        if file.size is not None and part.exists() and part.stat().st_size > file.size:
            part.unlink()

        class Report(ProgressCallback):
            done = 0

            def update(self, size: int) -> None:  # the bytes already there first, then each chunk
                Report.done += size
                progress(Report.done)

        url = get_file_download_url(repo, file.path, revision, endpoint=self.endpoint)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        size = file.size if file.size is not None else 0
        digest = http_get_model_file(
            url, str(part.parent), part.name, size, None, headers, disable_tqdm=True, progress_callbacks=[Report]
        )
        return digest or sha256_of(part).hexdigest()  # None when it resumed: hash what is on disk

    def secrets(self) -> list[str]:
        return [self.token] if self.token else []


SOURCES: dict[str, Callable[[], Hub]] = {"hf": HuggingFace, "modelscope": ModelScope}
DEFAULT_SOURCES = "hf,modelscope"


def configured_sources(choice: str | None = None) -> list[str]:
    """``--source`` when given, else ``LINGXI_MODEL_SOURCES`` (default ``hf,modelscope``: the first, then the other)."""
    text = choice or os.environ.get("LINGXI_MODEL_SOURCES") or DEFAULT_SOURCES
    names = [s.strip().lower() for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in SOURCES]
    if unknown or not names:
        raise ValueError(f"model source must be one of {', '.join(SOURCES)} (got {text!r})")
    return names
