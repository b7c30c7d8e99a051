"""Reading, transforming and batching image-caption data (no model code)."""
