"""The rule-based scorers and the judge's verdict parser."""

from __future__ import annotations

import time

import pytest

from opro.scorers import (
    ScorerName,
    check_target,
    contains,
    exact,
    final_number,
    numeric,
    parse_verdict,
    regex_match,
)


@pytest.mark.parametrize(
    ("output", "target", "expected"),
    [
        ("Paris", "Paris", True),
        ("  paris. ", "Paris", True),
        ("PARIS!", "paris", True),
        ("Ｐａｒｉｓ", "Paris", True),  # full-width letters (NFKC)
        ("Paris, France", "Paris", False),
        ("北京。", "北京", True),
    ],
)
def test_exact_ignores_case_spacing_and_edge_punctuation_only(output: str, target: str, expected: bool) -> None:
    assert exact(output, target) is expected


def test_contains_finds_the_target_inside_the_answer() -> None:
    assert contains("The capital is Paris, of course.", "paris")
    assert contains("答案是北京", "北京")
    assert not contains("The capital is Lyon.", "Paris")


def test_regex_searches_the_target_pattern() -> None:
    assert regex_match("The answer is 42 apples", r"\b42\b")
    assert not regex_match("The answer is 420", r"\b42\b")
    assert regex_match("YES", r"(?i)^yes$")


def test_a_pathological_regex_is_a_miss_not_a_hang() -> None:
    started = time.monotonic()
    assert not regex_match("a" * 40 + "!", r"^(a+)+$")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("output", "target", "expected"),
    [
        ("16", "16", True),
        ("12 + 4 = 16", "16", True),
        ("The answer is 16.", "16", True),
        ("First 3 + 4 = 7, then 7 + 9 = 16. So 16 apples.", "16", True),
        ("The answer is 16, because 10 + 6 is 16 and 2 is not.", "16", True),  # after the marker
        ("I think 15", "16", False),
        ("1,234 dollars", "1234", True),
        ("-7", "-7", True),
        ("−7", "-7", True),  # a real minus sign
        ("It is 0.5", "1/2", True),
        ("3/4", "0.75", True),
        ("#### 72", "72", True),
        ("答案是 12 元", "12", True),
        ("50%", "50", True),
        ("no idea", "3", False),
        ("", "3", False),
    ],
)
def test_numeric_compares_the_final_answer_number(output: str, target: str, expected: bool) -> None:
    assert numeric(output, target) is expected


def test_final_number_prefers_the_number_after_the_last_answer_marker() -> None:
    assert final_number("The answer is 8. Check: 8 - 3 = 5... no wait, answer: 9 (9 > 8)") == 9
    assert final_number("no numbers here") is None


def test_check_target_explains_targets_a_scorer_cannot_use() -> None:
    assert check_target(ScorerName.numeric, "42") is None
    assert "not a number" in (check_target(ScorerName.numeric, "forty-two") or "")
    assert check_target(ScorerName.regex, r"\d+") is None
    assert "regular expression" in (check_target(ScorerName.regex, "(unclosed") or "")
    assert "empty" in (check_target(ScorerName.exact, "...") or "")
    assert check_target(ScorerName.llm_judge, "anything goes") is None


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("yes", True),
        ("Yes, the answer matches.", True),
        ("No.", False),
        ("Incorrect: the reference says 5.", False),
        ("correct", True),
        ("是", True),
        ("否", False),
        ("I cannot tell", False),
    ],
)
def test_judge_verdict_is_the_first_yes_or_no_word(reply: str, verdict: bool) -> None:
    assert parse_verdict(reply) is verdict
