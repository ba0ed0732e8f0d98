"""Inference: file -> waveform -> log-mel chunks -> chunk and song embeddings."""

from soundalike.inference.embed import Embedder, TrackEmbedding, embed, song_embedding

__all__ = ["Embedder", "TrackEmbedding", "embed", "song_embedding"]
