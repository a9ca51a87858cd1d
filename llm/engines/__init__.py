"""llm engines: ``local`` (in-process transformers), ``openai`` (OpenAI-compatible upstream), ``ollama``."""
