"""The lingxi kernel: what every service shares and nothing model-specific."""
