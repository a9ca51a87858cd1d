"""lingxi vlm: image description."""
