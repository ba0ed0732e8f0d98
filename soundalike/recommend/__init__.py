"""Recommendations: listening history in the catalog (``listens``), blended with audio similarity."""
