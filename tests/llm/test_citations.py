"""How an answer's ``[n]`` become OpenAI's ``url_citation`` annotations, and when an uncited answer is
attributed to the source it was taken from (plain and streamed alike)."""

from __future__ import annotations

import asyncio

import openai

from llm import openai_format
from llm.citations import annotate, annotated_stream, attributed
from llm.web_answer import Source, with_sources

SOURCES = [
    Source(1, "Why the sea has two tides a day", "https://tides.example/", "Tides are caused by the Moon's pull."),
    Source(
        2,
        "普洱茶的发酵",
        "https://tea.example/",
        "熟茶经过渥堆发酵，微生物在湿热环境中分解茶多酚，使茶汤变得红浓醇厚。",
    ),
]


def completion(content: str) -> dict:
    return openai_format.completion("m", content, "stop", 10, 5)


def test_each_cited_number_is_an_annotation_slicing_its_marker():
    content = "Tides come from the Moon [1]. 熟茶渥堆发酵 [2]. Unknown [7]."
    message = annotate(completion(content), SOURCES)["choices"][0]["message"]
    parsed = openai.types.chat.ChatCompletionMessage.model_validate(message)
    assert parsed.content == content  # cited answers are left as written
    assert [
        (a.url_citation.url, content[a.url_citation.start_index : a.url_citation.end_index]) for a in parsed.annotations
    ] == [
        ("https://tides.example/", "[1]"),
        ("https://tea.example/", "[2]"),
    ]


def test_an_uncited_answer_taken_from_a_source_is_attributed_to_it():
    assert attributed("熟普洱茶经过渥堆发酵，微生物在湿热环境中分解茶多酚。", SOURCES) == " [2]"
    assert attributed("The Moon's pull causes the tides.", SOURCES) == " [1]"
    assert attributed("Python is a programming language used widely.", SOURCES) == ""  # from no source
    assert attributed("The tides [1].", SOURCES) == ""  # the model's own citation stands
    message = annotate(completion("熟普洱茶经过渥堆发酵。"), SOURCES)["choices"][0]["message"]
    assert message["content"] == "熟普洱茶经过渥堆发酵。 [2]"
    assert message["annotations"][0]["url_citation"]["url"] == "https://tea.example/"


def test_a_stream_ends_with_the_attributed_marker_then_the_annotations():
    async def chunks():
        for text, finish in [("熟普洱茶经过", None), ("渥堆发酵。", "stop")]:
            yield openai_format.chunk("id", "m", 0, {"content": text}, finish, {"prompt_tokens": 1} if finish else None)

    async def collect():
        return [chunk async for chunk in annotated_stream(chunks(), SOURCES)]

    out = asyncio.run(collect())
    deltas = [chunk["choices"][0]["delta"] for chunk in out]
    content = "".join(delta.get("content", "") for delta in deltas)
    assert content == "熟普洱茶经过渥堆发酵。 [2]"
    assert [chunk["choices"][0]["finish_reason"] for chunk in out] == [None, None, None, "stop"]
    assert "usage" in out[-1] and all("usage" not in chunk for chunk in out[:-1])
    [annotation] = deltas[-1]["annotations"]
    span = annotation["url_citation"]
    assert content[span["start_index"] : span["end_index"]] == "[2]" and span["url"] == "https://tea.example/"


def test_the_question_goes_last_after_its_sources_in_its_language():
    conversation = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "熟茶怎么发酵？"}]
    prompt = with_sources(conversation, "熟茶怎么发酵？", SOURCES)
    assert prompt[-1]["role"] == "user" and prompt[-1]["content"].index("[2] 普洱茶的发酵") < prompt[-1][
        "content"
    ].index("熟茶怎么发酵？")
    assert "中文" in prompt[-1]["content"] and {"role": "system", "content": "be brief"} in prompt
