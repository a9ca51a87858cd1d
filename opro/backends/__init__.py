"""The backends opro calls: a chat LLM and an embedder (see base.py). An OpenAI-compatible LLM (lingxi
llm by default) is the kernel's ``services.clients.LLMClient``; Ollama's native API is in ollama.py."""
