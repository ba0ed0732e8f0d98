from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    import torch

    torch.set_num_threads(1)
    try:
        import faiss

        faiss.omp_set_num_threads(1)
    except ImportError:
        pass


@pytest.fixture(autouse=True, scope="session")
def _own_cache(tmp_path_factory):
    """Exported ONNX graphs go to a cache of the test session's own (CLI subprocesses inherit it), never
    to the user's ~/.cache."""
    os.environ["SOUNDALIKE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def synth_folder(tmp_path_factory):
    """Eight generated 30 s tracks as WAV."""
    from soundalike.testing import write_tracks

    folder = tmp_path_factory.mktemp("synth")
    write_tracks(folder, list(range(8)), duration=30.0)
    return folder


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """A few rendered pieces from the demo-corpus pipeline (bach, folk), made by the tests."""
    pytest.importorskip("music21")
    pytest.importorskip("tinysoundfont")
    from soundalike.data.render import DemoCorpusConfig, render_demo_corpus

    out = tmp_path_factory.mktemp("rendered")
    cfg = DemoCorpusConfig(collections=("bach", "ryansMammoth"), works_per_collection=2, instrumentations=2,
                           max_seconds=25.0, seed=3)
    summary = render_demo_corpus(out, cfg, jobs=1)
    assert summary.tracks >= 4
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(0)
