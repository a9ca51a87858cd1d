"""Main text and metadata out of a fetched page: trafilatura first, a plain-text fallback second."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

HTML_TYPES = {"text/html", "application/xhtml+xml"}
TEXT_TYPES = {"text/plain"}
META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([\w-]+)""", re.IGNORECASE)
WHITESPACE = re.compile(r"[ \t\r\f\v]+")


@dataclass(frozen=True)
class ExtractedPage:
    title: str
    content: str
    site: str
    lang: str | None
    published_at: datetime | None
    html: str

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(f"{self.title}\n{self.content}".encode()).hexdigest()


def decode(body: bytes, charset: str | None) -> str:
    candidates = [charset] if charset else []
    sniffed = META_CHARSET.search(body[:4096])
    if sniffed:
        candidates.append(sniffed.group(1).decode("ascii", "ignore"))
    candidates += ["utf-8", "gb18030"]
    for candidate in candidates:
        try:
            return body.decode(candidate or "utf-8")
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("utf-8", errors="replace")


def extract(body: bytes, content_type: str, charset: str | None, url: str) -> ExtractedPage:
    text = decode(body, charset)
    site = urlsplit(url).hostname or ""
    if content_type in TEXT_TYPES:
        content = normalise(text)
        title = content.split("\n", 1)[0][:200]
        return ExtractedPage(title, content, site, detect_language(content), None, "")
    title, content, published, sitename = with_trafilatura(text, url)
    if not content:
        title, content = plain_text(text)
    return ExtractedPage(title, content, sitename or site, detect_language(content), published, text)


def with_trafilatura(html: str, url: str) -> tuple[str, str, datetime | None, str]:
    import trafilatura

    document = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False)
    if document is None:
        return "", "", None, ""
    fields = document if isinstance(document, dict) else document.as_dict()
    content = normalise(fields.get("text") or "")
    title = (fields.get("title") or "").strip()
    return title, content, parse_date(fields.get("date")), (fields.get("sitename") or "").strip()


def plain_text(html: str) -> tuple[str, str]:
    """Fallback for pages trafilatura finds no main text in: every visible text node."""
    import lxml.html

    try:
        tree = lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return "", normalise(html)
    for element in tree.xpath("//script|//style|//noscript|//template"):
        element.drop_tree()
    title = (tree.findtext(".//title") or "").strip()
    body = tree.find(".//body")
    return title, normalise((body if body is not None else tree).text_content())


def normalise(text: str) -> str:
    lines = (WHITESPACE.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def parse_date(value: object) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language (py3langid ships its model), None for empty text."""
    sample = text[:5000].strip()
    if not sample:
        return None
    import py3langid

    lang, _ = py3langid.classify(sample)
    return str(lang)


def warm_up() -> None:
    """Import trafilatura and load the language model now (about 6 s on a busy 2-core box), not inside the
    first web search's fetch deadline."""
    extract(
        b"<html><body><article><p>A page to warm up.</p></article></body></html>", "text/html", "utf-8", "http://x/"
    )
