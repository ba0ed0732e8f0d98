"""The example notebook runs top to bottom (nbclient, a real kernel) on a catalog, and answers render as tables
with players and convert to pandas."""

from __future__ import annotations

from pathlib import Path

import pytest

from soundalike import Catalog
from soundalike.testing import write_tracks

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "tour.ipynb"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb")
    paths = write_tracks(tmp / "music", [2, 13, 31, 59, 83], duration=14.0)
    with Catalog.create(tmp / "cat") as cat:
        cat.add([tmp / "music"])
    return tmp, paths


def test_answers_render_as_tables_with_players_and_convert_to_pandas(small):
    pytest.importorskip("pandas")
    import soundalike

    tmp, paths = small
    with Catalog.open(tmp / "cat") as cat:
        matches = soundalike.similar(cat, str(paths[1]), k=3)
        assert isinstance(matches, list) and len(matches) == 3
        page = matches._repr_html_()
        assert page.count("<tr>") == 4 and page.count("<audio") == 3  # a header and a row per match
        assert "track_013" in page and "<table>" in page
        df = matches.to_pandas()
        assert list(df["rank"]) == [1, 2, 3] and list(df["id"]) == [m.track.id for m in matches]
        assert df["score"].is_monotonic_decreasing
        found = soundalike.identify(cat, str(paths[2]), duration=6)
        assert "track_031" in found._repr_html_() and found.to_pandas()["id"].iloc[0] == found.match.track.id
        tags = soundalike.tag(str(paths[0]))
        assert tags._repr_html_().count("<tr>") == 11
        frame = tags.to_pandas()
        assert frame["score"].is_monotonic_decreasing and len(frame) == len(tags.tags)
        assert list(tags.to_pandas(timeline=True).columns[:2]) == ["start", "end"]


@pytest.mark.slow  # a Jupyter kernel
def test_the_example_notebook_runs_top_to_bottom(small, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    tmp, paths = small
    monkeypatch.setenv("SOUNDALIKE_CATALOG", str(tmp / "cat"))
    monkeypatch.setenv("SOUNDALIKE_QUERY", str(paths[3]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert len(html) >= 5 and all("<table" in h for h in html)  # similar, its DataFrame, identify, tags, recommend
    assert "track_059" in html[0]
