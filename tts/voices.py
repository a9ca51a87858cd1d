"""OpenAI's voice names onto tts styles (``TTS_OPENAI_VOICES``), and the lists clients read.

A ``voice`` is looked up in this order: a style of the engine (tts's own names, or an upstream's own
voices), then the map; a mapped style the engine lacks (the default map names espeak's styles) falls
back to ``TTS_DEFAULT_STYLE``. Anything else is a 400 listing both kinds of names.
"""

from __future__ import annotations

from services.errors import BadRequest

OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse", "marin", "cedar",
)  # fmt: skip
# spread over the espeak styles by the voices' character: neutral, male, deep/storytelling, female
DEFAULT_VOICE_MAP = {
    "alloy": "style1",
    "ash": "male",
    "ballad": "narrator",
    "coral": "style2",
    "echo": "male",
    "fable": "narrator",
    "nova": "female",
    "onyx": "narrator",
    "sage": "style2",
    "shimmer": "female",
    "verse": "style1",
    "marin": "female",
    "cedar": "male",
}
TTS_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")  # any model name is accepted; these are listed


def parse_voice_map(value: object) -> object:
    """``alloy=style1,echo=male`` (the environment's form) as a dict; a dict passes through."""
    if not isinstance(value, str):
        return value
    pairs = {}
    for item in value.split(","):
        if not item.strip():
            continue
        name, sep, style = item.partition("=")
        if not sep or not name.strip() or not style.strip():
            raise ValueError(f"TTS_OPENAI_VOICES entries are voice=style, not {item.strip()!r}")
        pairs[name.strip()] = style.strip()
    return pairs


class Voices:
    def __init__(self, voice_map: dict[str, str], default_style: str) -> None:
        self.voice_map = voice_map
        self.default_style = default_style

    def style_of(self, voice: str, styles: list[str]) -> str:
        if voice in styles:
            return voice
        if voice in self.voice_map:
            mapped = self.voice_map[voice]
            return mapped if mapped in styles else self.default_style
        names = [*styles, *(name for name in self.voice_map if name not in styles)]
        raise BadRequest(f"unknown voice {voice!r}; valid voices: {', '.join(names)}")

    def listing(self, styles: list[str]) -> list[dict[str, str]]:
        """``[{"id", "name"}]``: the engine's styles, then the mapped names with the style they speak in."""
        rows = [{"id": style, "name": style} for style in styles]
        for name in self.voice_map:
            if name not in styles:
                rows.append({"id": name, "name": f"{name} ({self.style_of(name, styles)})"})
        return rows
