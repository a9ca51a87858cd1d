"""lingxi llm: the LLM gateway."""
