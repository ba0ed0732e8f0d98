"""Data: manifests, datasets, and the demo-corpus renderer."""
