"""Tool-call decisions for ``bench/llm_local.py``: every case offers all of ``TOOLS`` with ``tool_choice: auto``.

Half the questions need a tool (live data, arithmetic, an action), half do not (chit-chat,
translation, code, facts a model knows); Chinese and English. Each names the tool a good assistant
calls, or None, and for a call the text its arguments should hold (``hints``: argument -> substring).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    parameters = {"type": "object", "properties": properties, "required": required}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


TEXT = {"type": "string"}
TOOLS = [
    function(
        "get_weather",
        "Current weather and forecast for a city",
        {"city": TEXT, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        ["city"],
    ),
    function("get_time", "The current local time in a city or time zone", {"location": TEXT}, ["location"]),
    function("search_web", "Search the web for recent information", {"query": TEXT}, ["query"]),
    function("calculator", "Evaluate an arithmetic expression exactly", {"expression": TEXT}, ["expression"]),
    function(
        "send_email",
        "Send an email on the user's behalf",
        {"to": TEXT, "subject": TEXT, "body": TEXT},
        ["to", "subject", "body"],
    ),
    function(
        "convert_currency",
        "Convert an amount between currencies at today's rate",
        {"amount": {"type": "number"}, "from_currency": TEXT, "to_currency": TEXT},
        ["amount", "from_currency", "to_currency"],
    ),
]


@dataclass(frozen=True)
class Case:
    prompt: str
    tool: str | None  # the tool to call, or None: answer in text
    hints: dict[str, str] = field(default_factory=dict)  # argument -> text it should hold (a|b: either)


CASES = [
    # a tool is needed
    Case("北京今天天气怎么样？", "get_weather", {"city": "北京"}),
    Case("What's the weather like in Paris right now?", "get_weather", {"city": "Paris"}),
    Case("上海明天会下雨吗？", "get_weather", {"city": "上海"}),
    Case("What time is it in Tokyo at the moment?", "get_time", {"location": "Tokyo"}),
    Case("现在纽约几点了？", "get_time", {"location": "纽约|New York"}),
    Case("帮我在网上搜索一下今天的科技新闻。", "search_web", {"query": "科技|tech"}),
    Case("Search the web for the latest release notes of Python.", "search_web", {"query": "Python"}),
    Case("帮我算一下 123456 乘以 789 等于多少。", "calculator", {"expression": "123456"}),
    Case("Please compute 3847 * 29 / 7 exactly.", "calculator", {"expression": "3847"}),
    Case(
        "给 zhang@example.com 发一封邮件，主题是“会议改期”，告诉他会议改到周五下午三点。",
        "send_email",
        {"to": "zhang@example.com"},
    ),
    Case(
        "Send an email to bob@example.com telling him I'll be late for dinner.", "send_email", {"to": "bob@example.com"}
    ),
    Case("按今天的汇率，100 美元能换多少人民币？", "convert_currency", {"amount": "100"}),
    # no tool is needed
    Case("你好，给我一句鸡汤", None),
    Case("把这句话翻译成英文：我喜欢编程。", None),
    Case("Write a Python function that reverses a string.", None),
    Case("天空为什么是蓝色的？", None),
    Case("What is the capital of France?", None),
    Case("Tell me a short joke about programmers.", None),
    Case("用一句话解释什么是递归。", None),
    Case("How do I sort a list of dicts by a key in Python?", None),
    Case("谢谢你的帮助！", None),
    Case("Translate 'good morning' into Chinese.", None),
    Case("水的化学式是什么？", None),
    Case("Python 适合初学者吗？", None),
]
