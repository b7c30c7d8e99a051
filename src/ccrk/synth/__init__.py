"""The embedded default: a procedurally generated multilingual benchmark."""
