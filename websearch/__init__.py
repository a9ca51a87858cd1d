"""lingxi websearch: web ingest and search."""
