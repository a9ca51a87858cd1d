"""How an answer is judged against its target: exact, contains, regex, numeric, or an LLM judge.

The rule-based scorers are pure functions of ``(output, target)``. The LLM judge is a prompt and a
parser here; the job runner makes the call.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from fractions import Fraction

import regex  # the stdlib ``re`` has no timeout, and a user's pattern must not stall the service

REGEX_TIMEOUT_S = 0.5
EDGE_PUNCTUATION = " \t\n\"'“”‘’`.,;:!?。，；：！？"


class ScorerName(str, enum.Enum):
    exact = "exact"  # the whole answer equals the target (case, spacing and edge punctuation aside)
    contains = "contains"  # the target appears in the answer
    regex = "regex"  # the target is a regular expression found in the answer
    numeric = "numeric"  # the answer's final number equals the target's (maths answers)
    llm_judge = "llm_judge"  # a judge model says whether the answer matches the target


def normalize(text: str) -> str:
    """Casefolded, NFKC, inner whitespace collapsed, edge punctuation and spaces stripped."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split()).strip(EDGE_PUNCTUATION)


def exact(output: str, target: str) -> bool:
    return normalize(output) == normalize(target)


def contains(output: str, target: str) -> bool:
    return normalize(target) in normalize(output)


def compile_pattern(target: str) -> regex.Pattern[str]:
    """The target as a pattern; ``ValueError`` with the reason when it is not one."""
    try:
        return regex.compile(target)
    except regex.error as exc:
        raise ValueError(str(exc)) from exc


def regex_match(output: str, target: str) -> bool:
    try:
        return compile_pattern(target).search(output, timeout=REGEX_TIMEOUT_S) is not None
    except TimeoutError:  # a pathological pattern: counted as no match rather than hanging
        return False


# A number as people and models write it: -1,234.5  3/4  50%  ¥12  1e3 is not needed for school maths.
NUMBER = re.compile(r"(?<![\w.])[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?")
# Where a model says which number is its answer; the first number after the last such marker wins.
ANSWER_MARKER = re.compile(r"(?:answer\s*(?:is|:)|答案\s*(?:是|为|:|：)|####|\\boxed\{|=)", re.I)


def parse_number(text: str) -> Fraction | None:
    """``text`` as an exact number (commas, a minus sign, a decimal point or a fraction), or ``None``."""
    cleaned = text.strip().replace("−", "-").replace(",", "").replace(" ", "").rstrip("%")
    try:
        return Fraction(cleaned)
    except (ValueError, ZeroDivisionError):
        return None


def final_number(output: str) -> Fraction | None:
    """The answer a model gave: the first number after its last answer marker, else its last number."""
    markers = list(ANSWER_MARKER.finditer(output))
    if markers:
        after = NUMBER.search(output, markers[-1].end())
        if after:
            return parse_number(after.group())
    numbers = NUMBER.findall(output)
    return parse_number(numbers[-1]) if numbers else None


def numeric(output: str, target: str) -> bool:
    expected = parse_number(target)
    got = final_number(output)
    if expected is None or got is None:
        return False
    return abs(float(got - expected)) <= 1e-6 * max(1.0, abs(float(expected)))


RULES = {
    ScorerName.exact: exact,
    ScorerName.contains: contains,
    ScorerName.regex: regex_match,
    ScorerName.numeric: numeric,
}


def check_target(scorer: ScorerName, target: str) -> str | None:
    """Why ``target`` cannot be scored by ``scorer``, or ``None`` when it can."""
    if scorer is ScorerName.regex:
        try:
            compile_pattern(target)
        except ValueError as exc:
            return f"is not a valid regular expression ({exc})"
    if scorer is ScorerName.numeric and parse_number(target) is None:
        return "is not a number (the numeric scorer needs one, such as 42, -3.5 or 3/4)"
    if not normalize(target) and scorer in (ScorerName.exact, ScorerName.contains):
        return "is empty once spaces and punctuation are stripped"
    return None


def judge_prompt(question: str, target: str, output: str) -> str:
    return (
        "You are grading an answer against a reference answer.\n\n"
        f"Question:\n{question}\n\nReference answer:\n{target}\n\nAnswer to grade:\n{output}\n\n"
        "Does the answer to grade give the same final answer as the reference answer? "
        "Reply with one word: yes or no."
    )


def parse_verdict(reply: str) -> bool:
    """The judge's verdict: the first yes/no (是/否, correct/incorrect) word in its reply; none is no."""
    match = re.search(r"\b(yes|no|correct|incorrect|true|false)\b|(是|否|正确|错误|对|错)", reply, re.I)
    if not match:
        return False
    return match.group().lower() in ("yes", "correct", "true", "是", "正确", "对")
