"""lingxi tts: text-to-speech."""
