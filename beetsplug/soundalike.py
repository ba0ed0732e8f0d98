"""soundalike for beets: ``plugins: soundalike`` in beets' config (``pip install 'soundalike[beets]'``).

- ``beet soundalike-index [QUERY] [--write]``: index the library's items (or those QUERY matches) into a
  soundalike catalog kept beside beets' database (``soundalike.catalog`` in its folder, or the ``catalog``
  option), incrementally by item path: unchanged files are skipped, changed ones re-embedded, removed ones
  pruned with ``--prune``. ``--write`` (or ``write: yes``) stores the analysis on the items as flexible
  attributes: ``sl_tags`` (the top tags, comma-separated) and ``bpm`` when the catalog keeps tempo
  (``events: yes`` indexes it).
- ``beet similar QUERY [-n 10] [-f FORMAT] [-p MIX.m3u8]``: the items that sound most like the first item
  QUERY matches, printed with beets' format syntax; ``-p`` writes an instant mix around it as M3U8.

Options (``soundalike:`` in beets' config): ``catalog`` (a folder), ``write`` (no), ``tags`` (5, how many top
tags go into ``sl_tags``), ``events`` (no: also store tempo, beats and drum hits; slower).
"""

from __future__ import annotations

import os
from typing import Any

from beets import ui
from beets.plugins import BeetsPlugin
from beets.util import displayable_path, syspath


def _path(item: Any) -> str:
    return os.path.abspath(syspath(item.path))


class SoundalikePlugin(BeetsPlugin):
    def __init__(self, name: str | None = None) -> None:
        super().__init__(name or "soundalike")
        self.config.add({"catalog": "", "write": False, "tags": 5, "events": False})

    # -------------------------------------------------------------------- the catalog beside beets' database
    def catalog_dir(self, lib: Any) -> str:
        configured = self.config["catalog"].as_str()
        if configured:
            return os.path.abspath(os.path.expanduser(configured))
        return os.path.join(os.path.dirname(os.path.abspath(syspath(lib.path))), "soundalike.catalog")

    def open_catalog(self, lib: Any, *, create: bool = False) -> Any:
        from soundalike import Catalog
        from soundalike.errors import CatalogError

        root = self.catalog_dir(lib)
        if Catalog.exists(root):
            return Catalog.open(root)
        if not create:
            raise ui.UserError(f"no soundalike catalog at {displayable_path(root)}: run `beet soundalike-index` first")
        try:
            return Catalog.create(root)
        except CatalogError as exc:
            raise ui.UserError(str(exc)) from None

    # -------------------------------------------------------------------------------------- commands
    def commands(self) -> list[Any]:
        index = ui.Subcommand("soundalike-index", help="index library items into the soundalike catalog")
        index.parser.add_option("--write", action="store_true", default=None,
                                help="store sl_tags (and bpm, when tempo is kept) on the items")
        index.parser.add_option("--prune", action="store_true", default=False,
                                help="drop catalog tracks whose item is gone from the library")
        index.func = self.cmd_index
        similar = ui.Subcommand("similar", help="items that sound like the first item QUERY matches")
        similar.parser.add_option("-n", "--number", type="int", default=10, help="how many (default 10)")
        similar.parser.add_option("-p", "--playlist", metavar="MIX.m3u8", default=None,
                                  help="write an instant mix around the item as M3U8 instead")
        similar.parser.add_format_option()
        similar.func = self.cmd_similar
        return [index, similar]

    def cmd_index(self, lib: Any, opts: Any, args: list[str]) -> None:
        from soundalike.errors import SoundalikeError

        items = list(lib.items(args))
        if not items:
            ui.print_("soundalike: no items match")
            return
        paths = [_path(i) for i in items]
        cat = self.open_catalog(lib, create=True)
        try:
            if self.config["events"].get(bool) and not cat.rhythm.enabled:
                cat.enable_events()
            report = cat.add(paths)
            if opts.prune:
                keep = {_path(i) for i in lib.items()}
                cat.remove([t.id for t in cat.tracks() if t.path not in keep])
            ui.print_(f"soundalike: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
                      f"{len(report.failed)} failed -> {displayable_path(cat.root)}")
            for path, why in report.failed:
                ui.print_(f"  {displayable_path(path)}: {why}")
            write = opts.write if opts.write is not None else self.config["write"].get(bool)
            if write:
                self.write_attributes(cat, items)
        except SoundalikeError as exc:
            raise ui.UserError(str(exc)) from None
        finally:
            cat.close()

    def write_attributes(self, cat: Any, items: list[Any]) -> None:
        """``sl_tags`` (top tags) and ``bpm`` (stored tempo) on each indexed item, saved to beets' database."""
        from soundalike.errors import TrackNotFoundError

        n = self.config["tags"].get(int)
        for item in items:
            try:
                track = cat.track(_path(item))
            except TrackNotFoundError:
                continue
            top = cat.top_tags([track.id], n).get(track.id, {}) if cat.has_tags else {}
            if top:
                item["sl_tags"] = ", ".join(top)
            rhythm = cat.track_rhythm(track.id)
            if rhythm and rhythm.get("tempo"):
                item["bpm"] = int(round(float(rhythm["tempo"])))
            item.store()

    def cmd_similar(self, lib: Any, opts: Any, args: list[str]) -> None:
        from soundalike.errors import SoundalikeError, TrackNotFoundError
        from soundalike.recommend.playlist import write_m3u8
        from soundalike.tasks.playlist import playlist
        from soundalike.tasks.similar import similar

        seed = lib.items(args).get()
        if seed is None:
            raise ui.UserError("no item matches that query")
        cat = self.open_catalog(lib)
        try:
            try:
                track = cat.track(_path(seed))
            except TrackNotFoundError:
                raise ui.UserError(f"{displayable_path(seed.path)} is not in the soundalike catalog yet: run "
                                   "`beet soundalike-index` first") from None
            if opts.playlist:
                mix = playlist(cat, track.id, n=opts.number)
                write_m3u8(mix, opts.playlist)
                ui.print_(f"a mix of {len(mix.tracks)} tracks -> {displayable_path(opts.playlist)}")
                return
            matches = similar(cat, track.id, k=opts.number)
        except SoundalikeError as exc:
            raise ui.UserError(str(exc)) from None
        finally:
            cat.close()
        by_path = {_path(i): i for i in lib.items()}
        for m in matches:
            item = by_path.get(m.track.path)
            if item is not None:  # a catalog track beets no longer holds is skipped
                ui.print_(format(item, opts.format) if opts.format else format(item))
