"""Use cases over a model and a catalog: similar (and later tag, identify, recommend)."""
