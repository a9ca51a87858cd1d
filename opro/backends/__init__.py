"""The backends opro calls: a chat LLM and an embedder (see base.py)."""
