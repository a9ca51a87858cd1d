"""The meta-prompt against the paper's structure, the scorer prompt's placement, and reply parsing."""

from __future__ import annotations

import re

import pytest

from opro.metaprompt import (
    Exemplar,
    InstructionPosition,
    build_meta_prompt,
    parse_instruction,
    place,
    score_bucket,
)

EXEMPLARS = [Exemplar("What is 2 + 3?", "5"), Exemplar("Tom has 4 apples and eats 1. How many are left?", "3")]


def scored_texts(prompt: str) -> list[tuple[str, int]]:
    return [(text, int(score)) for text, score in re.findall(r"text:\n(.*)\nscore:\n(\d+)", prompt)]


def test_the_meta_prompt_shows_the_best_twenty_in_ascending_order_then_exemplars_then_the_ask() -> None:
    scored = [(f"instruction {i}", ((i * 37) % 25) / 25) for i in range(25)]
    prompt = build_meta_prompt(scored, EXEMPLARS, InstructionPosition.before_question)

    shown = scored_texts(prompt)
    assert len(shown) == 20
    scores = [score for _, score in shown]
    assert scores == sorted(scores)  # ascending: the best last, nearest to where the model writes
    worst_five = {text for text, _ in sorted(scored, key=lambda item: item[1])[:5]}
    assert not worst_five & {text for text, _ in shown}
    assert all(0 <= score <= 100 for score in scores)

    history_at = prompt.index("text:\n")
    exemplars_at = prompt.index("input:\n")
    ask_at = prompt.index("Write your new text that is different from the old ones")
    assert prompt.index("ascending order") < history_at < exemplars_at < ask_at
    assert prompt.rstrip().endswith("Write the text in square brackets.")
    assert "output:\n5" in prompt and "output:\n3" in prompt


def test_max_instructions_limits_the_history() -> None:
    scored = [(f"instruction {i}", i / 10) for i in range(10)]
    prompt = build_meta_prompt(scored, [], InstructionPosition.before_question, max_instructions=3)
    assert scored_texts(prompt) == [("instruction 7", 70), ("instruction 8", 80), ("instruction 9", 90)]
    assert "input:" not in prompt  # no exemplars asked for: that section is left out


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        (InstructionPosition.before_question, "Q: <INS>\nWhat is 2 + 3?\n\nA:"),
        (InstructionPosition.after_question, "Q: What is 2 + 3?\n<INS>\n\nA:"),
        (InstructionPosition.before_answer, "Q: What is 2 + 3?\n\nA: <INS>"),
    ],
)
def test_exemplars_show_where_the_instruction_goes(position: InstructionPosition, expected: str) -> None:
    prompt = build_meta_prompt([("Solve it.", 0.5)], EXEMPLARS[:1], position)
    assert f"input:\n{expected}\noutput:\n5" in prompt


def test_the_scorer_prompt_places_the_instruction_and_an_empty_one_disappears() -> None:
    q = "What is 2 + 3?"
    assert place("Think step by step.", q, InstructionPosition.before_question) == f"Q: Think step by step.\n{q}\n\nA:"
    assert place("Think step by step.", q, InstructionPosition.after_question) == f"Q: {q}\nThink step by step.\n\nA:"
    assert place("Let's think.", q, InstructionPosition.before_answer) == f"Q: {q}\n\nA: Let's think."
    for position in InstructionPosition:
        assert place("", q, position) == f"Q: {q}\n\nA:"


def test_scores_are_shown_as_integers_from_0_to_100() -> None:
    assert [score_bucket(s) for s in (0.0, 0.125, 0.5, 1.0)] == [0, 12, 50, 100]


@pytest.mark.parametrize(
    ("reply", "instruction"),
    [
        ("[Solve the problem step by step.]", "Solve the problem step by step."),
        ("Sure! Here is my text: [Think, then answer with a number.]", "Think, then answer with a number."),
        ("<INS>Work it out.</INS>", "Work it out."),
        ("text:\nBreak the problem into parts.", "Break the problem into parts."),
        ('"Answer with only the number."\nscore: 90', "Answer with only the number."),
        ("[<INS>] [Add the numbers carefully.]", "Add the numbers carefully."),
        ("   \n  ", ""),
    ],
)
def test_parse_instruction_takes_square_brackets_then_tags_then_the_first_line(reply: str, instruction: str) -> None:
    assert parse_instruction(reply) == instruction


def test_a_long_reply_is_cut_to_a_usable_instruction() -> None:
    assert len(parse_instruction("[" + "word " * 400 + "]")) <= 500
