"""The OPRO paper's prompts (Yang et al., "Large Language Models as Optimizers", 2023).

The optimizer sees the best past instructions with their scores in ascending order (the best last,
nearest to where it writes), a few exemplars showing where the instruction goes (``<INS>``), and is
asked for a new, different, higher-scoring instruction in square brackets. The scorer sees the
instruction placed in each example, in the paper's ``Q: … A:`` format.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

MAX_INSTRUCTION_CHARS = 500


class InstructionPosition(str, enum.Enum):
    before_question = "before_question"  # the paper's Q_begin
    after_question = "after_question"  # Q_end
    before_answer = "before_answer"  # A_begin: the instruction opens the answer


@dataclass(frozen=True)
class Exemplar:
    input: str
    target: str


def place(instruction: str, question: str, position: InstructionPosition) -> str:
    """The scorer's prompt: ``question`` with ``instruction`` (or the ``<INS>`` marker) in its place."""
    if position is InstructionPosition.before_question:
        body = f"Q: {instruction}\n{question}\n\nA:" if instruction else f"Q: {question}\n\nA:"
    elif position is InstructionPosition.after_question:
        body = f"Q: {question}\n{instruction}\n\nA:" if instruction else f"Q: {question}\n\nA:"
    else:
        body = f"Q: {question}\n\nA: {instruction}".rstrip()
    return body


def score_bucket(score: float) -> int:
    """A train accuracy in [0, 1] as the paper shows it to the optimizer: an integer from 0 to 100."""
    return round(score * 100)


def build_meta_prompt(
    scored: Sequence[tuple[str, float]],
    exemplars: Sequence[Exemplar],
    position: InstructionPosition,
    max_instructions: int = 20,
) -> str:
    """The meta-prompt for one optimisation step.

    ``scored`` holds every (instruction, train accuracy) so far; the best ``max_instructions`` of them
    are shown, lowest score first. Ties keep the order they were found in.
    """
    best = sorted(enumerate(scored), key=lambda item: (item[1][1], item[0]))[-max_instructions:]
    history = "\n\n".join(f"text:\n{text}\nscore:\n{score_bucket(score)}" for _, (text, score) in best)
    shown = "\n\n".join(f"input:\n{place('<INS>', e.input, position)}\noutput:\n{e.target}" for e in exemplars)
    parts = [
        "I have some texts along with their corresponding scores. The texts are arranged in ascending order "
        "based on their scores, where higher scores indicate better quality.",
        history,
    ]
    if shown:
        parts += [
            "The following exemplars show how to apply your text: you replace <INS> in each input with your "
            "text, then read the input and give an output. We say your output is wrong if your output is "
            "different from the given output, and we say your output is correct if they are the same.",
            shown,
        ]
    parts.append(
        "Write your new text that is different from the old ones and has a score as high as possible. "
        "Write the text in square brackets."
    )
    return "\n\n".join(part for part in parts if part)


SQUARE_BRACKETS = re.compile(r"\[([^\[\]]+)\]")
INS_TAGS = re.compile(r"<INS>(.*?)</INS>", re.S | re.I)
EDGES = " \t\n\"'“”‘’`*"


def parse_instruction(reply: str) -> str:
    """The instruction in an optimizer reply: the text in square brackets (as the meta-prompt asks),
    else between ``<INS>`` tags, else the first non-empty line; ``""`` when there is none."""
    for pattern in (SQUARE_BRACKETS, INS_TAGS):
        for match in pattern.finditer(reply):
            text = clean(match.group(1))
            if text and text.upper() != "<INS>":
                return text
    for line in reply.splitlines():
        text = clean(re.sub(r"^(text|instruction|new text)\s*[:：]", "", line.strip(), flags=re.I))
        if text:
            return text
    return ""


def clean(text: str) -> str:
    text = " ".join(text.replace("<INS>", " ").replace("</INS>", " ").split()).strip(EDGES)
    return text[:MAX_INSTRUCTION_CHARS].strip()
