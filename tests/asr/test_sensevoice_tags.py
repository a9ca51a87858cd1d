"""SenseVoice's rich tags, parsed from real SenseVoiceSmall outputs (its README demos, FunASR runs)."""

from __future__ import annotations

import pytest

from asr.engines.sensevoice_tags import RichText, parse_rich_text

JA = "彼を駆り立てるこの世のすてを破壊しろと この番組はご覧のスポンサーの提供でお送りしました。"
REAL_OUTPUTS = [
    (
        "<|en|><|EMO_UNKNOWN|><|Speech|><|woitn|>and so my fellow americans ask not what your country can do for "
        "you ask what you can do for your country",
        RichText(
            "and so my fellow americans ask not what your country can do for you ask what you can do for your country",
            "en",
            "unknown",
            "speech",
        ),
    ),
    (
        "<|en|><|SAD|><|Speech|><|woitn|>i did go and made many prisoners",
        RichText("i did go and made many prisoners", "en", "sad", "speech"),
    ),
    (
        "<|ko|><|NEUTRAL|><|Speech|><|woitn|>조금만 생각을 하면서 살면 훨씬 편할 거야",
        RichText("조금만 생각을 하면서 살면 훨씬 편할 거야", "ko", "neutral", "speech"),
    ),
    (
        "<|zh|><|NEUTRAL|><|Speech|><|withitn|>今天是2024年1月1日。",
        RichText("今天是2024年1月1日。", "zh", "neutral", "speech"),
    ),
    (
        f"<|ja|><|EMO_UNKNOWN|><|BGM|><|withitn|>{JA}",
        RichText(JA, "ja", "unknown", "bgm"),
    ),
    (  # funasr joins VAD segments: one tag group per segment, spaces between them
        "<|zh|><|NEUTRAL|><|Speech|><|withitn|>我们先看一下心智控制取这边的情况。         "
        "<|zh|><|NEUTRAL|><|Speech|><|withitn|>主持人刚才讲到这个意识转化的问题，我觉得需要互催一下。",
        RichText(
            "我们先看一下心智控制取这边的情况。主持人刚才讲到这个意识转化的问题，我觉得需要互催一下。",
            "zh",
            "neutral",
            "speech",
        ),
    ),
    (
        "<|en|><|HAPPY|><|Speech|><|woitn|>a cold dip restores health and zest a salt pickle tastes fine with ham "
        "tacos al pastor are my favorite <|en|><|EMO_UNKNOWN|><|Speech|><|woitn|>a zestful food is the hot cross bun",
        RichText(
            "a cold dip restores health and zest a salt pickle tastes fine with ham tacos al pastor are my favorite "
            "a zestful food is the hot cross bun",
            "en",
            "happy",
            "speech",
        ),
    ),
]


@pytest.mark.parametrize(("raw", "expected"), REAL_OUTPUTS)
def test_sensevoice_rich_tags_become_fields_and_leave_plain_text(raw, expected):
    assert parse_rich_text(raw) == expected


def test_text_without_tags_is_kept_as_it_is():
    assert parse_rich_text("a < b and c > d") == RichText("a < b and c > d", None, None, None)


def test_nospeech_output_is_empty_text_without_a_language():
    parsed = parse_rich_text("<|nospeech|><|EMO_UNKNOWN|><|Event_UNK|><|woitn|>")
    assert parsed == RichText("", None, "unknown", "unknown")
