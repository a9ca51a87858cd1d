from websearch.chunking import chunk_text, split_sentences


def test_sentences_split_at_chinese_and_western_punctuation():
    text = "数据库是什么？它保存数据。PostgreSQL is a database. It is free! 真的吗"
    assert split_sentences(text) == [
        "数据库是什么？",
        "它保存数据。",
        "PostgreSQL is a database.",
        "It is free!",
        "真的吗",
    ]


def test_decimal_points_and_urls_do_not_split():
    assert split_sentences("Python 3.13 is out. See python.org now.") == ["Python 3.13 is out.", "See python.org now."]


def test_chunks_respect_the_target_and_overlap():
    sentences = [f"Sentence number {i} talks about topic {i}." for i in range(60)]
    chunks = chunk_text(" ".join(sentences), target_chars=300, overlap_chars=80)
    assert len(chunks) > 5
    assert all(len(chunk) <= 300 for chunk in chunks)
    for previous, current in zip(chunks, chunks[1:], strict=False):
        first = current.split(". ")[0] + "."
        assert first in previous  # the overlap carries whole sentences of the previous chunk's tail
        assert previous.index(first) >= len(previous) - 80 - len(first)
    assert "Sentence number 59" in chunks[-1]


def test_chinese_chunks_join_without_spaces_and_cut_overlong_sentences():
    text = "。".join(["向量数据库用于语义检索"] * 80) + "。"
    chunks = chunk_text(text, target_chars=100, overlap_chars=20)
    assert all(len(c) <= 100 for c in chunks)
    assert " " not in chunks[0]
    long_sentence = "很" * 250
    pieces = chunk_text(long_sentence, target_chars=100, overlap_chars=20)
    assert len(pieces) >= 3 and all(len(p) <= 100 for p in pieces)
