"""OpenAI's Realtime API (``WS /v1/realtime``) over the suite: asr hears, the llm thinks, tts speaks."""
