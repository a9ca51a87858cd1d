"""lingxi asr: speech recognition."""
