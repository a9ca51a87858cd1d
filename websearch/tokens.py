"""Words for the keyword index: jieba segments Chinese; Latin words are lower-cased as they are.

Chunks are stored as a ``simple`` tsvector over these words, so 数据库 is found by 数据库 and by 数据.
"""

from __future__ import annotations

import logging
import re

WORD = re.compile(r"\w", re.UNICODE)
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_jieba_ready = False


def load_segmenter() -> None:
    """Load jieba's dictionary once (about a second); later calls are free."""
    global _jieba_ready
    if not _jieba_ready:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba_ready = True


def words(text: str) -> list[str]:
    load_segmenter()
    import jieba

    return [token.lower() for token in jieba.cut_for_search(text) if WORD.search(token)]


def index_text(text: str) -> str:
    """The text that goes into ``to_tsvector('simple', ...)``."""
    return " ".join(words(text))


def query_terms(query: str) -> list[str]:
    """Distinct words of a query, in order, safe to put into a tsquery (``\\w`` only)."""
    seen: dict[str, None] = {}
    for word in words(query):
        cleaned = "".join(ch for ch in word if ch.isalnum() or ch == "_")
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


def has_cjk(text: str) -> bool:
    return CJK.search(text) is not None
