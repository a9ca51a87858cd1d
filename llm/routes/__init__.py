"""llm routes: the seed API, OpenAI's API and Ollama's API, all over the same engines."""
