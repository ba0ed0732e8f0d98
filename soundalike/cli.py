"""The ``soundalike`` command: one function per sub-command over the library.

Every command prints human-readable text, or one JSON document with ``--json``.
Errors print ``error: ...`` (what went wrong and what to do) and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from soundalike import __version__
from soundalike.errors import ParameterError, SoundalikeError
from soundalike.limits import DEFAULT_MAX_DURATION

EXIT_USAGE = 2


def _emit(args: argparse.Namespace, payload: Any, text: Callable[[], None]) -> None:
    if getattr(args, "json", False):
        json.dump(payload, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        text()


def _threads(args: argparse.Namespace) -> None:
    n = getattr(args, "threads", None)
    if n:
        import torch

        torch.set_num_threads(int(n))
        try:
            import faiss

            faiss.omp_set_num_threads(int(n))
        except ImportError:  # pragma: no cover
            pass


def _progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "json", False) and not getattr(args, "quiet", False) and sys.stderr.isatty() or bool(
        getattr(args, "progress", False))


def _shown(path: str) -> str:
    """A file name as one line of text: control characters (a newline in a name) are escaped."""
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")


def _catalog_arg(args: argparse.Namespace) -> str:
    cat = args.catalog or os.environ.get("SOUNDALIKE_CATALOG")
    if not cat:
        raise SoundalikeError("no catalog given: pass --catalog DIR (or set SOUNDALIKE_CATALOG)")
    return str(cat)


# ---------------------------------------------------------------- commands


def cmd_demo_corpus(args: argparse.Namespace) -> int:
    from soundalike.data.render import DemoCorpusConfig, render_demo_corpus

    cfg = DemoCorpusConfig(
        collections=tuple(args.collections) if args.collections else DemoCorpusConfig.collections,
        works_per_collection=args.works_per_collection,
        instrumentations=args.instrumentations,
        ensembles=tuple(args.ensembles) if args.ensembles else DemoCorpusConfig.ensembles,
        keep_original=not args.no_original,
        max_seconds=args.max_seconds,
        sample_rate=args.sample_rate,
        audio_format=args.format,
        seed=args.seed,
        soundfont=args.soundfont,
    )
    summary = render_demo_corpus(args.out, cfg, jobs=args.jobs, progress=_progress(args))
    d = summary.to_dict()

    def text() -> None:
        print(f"rendered {d['tracks']} tracks ({d['works']} works, {d['seconds'] / 60:.1f} min of audio) "
              f"into {d['out']} in {d['wall_seconds']:.0f} s ({d['x_realtime']}x realtime)")
        if d["skipped_total"]:
            print(f"skipped {d['skipped_total']}: " + ", ".join(f"{k} {v}" for k, v in sorted(d["skipped"].items())))
        print(f"labels: {d['out']}/manifest.jsonl")

    _emit(args, d, text)
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from soundalike.index.catalog import Catalog

    _threads(args)
    cat_path = _catalog_arg(args)
    enabled = []
    heads = None if args.tag_heads == "none" else args.tag_heads  # None given: the default for a new catalog
    if Catalog.exists(cat_path):
        catalog = Catalog.open(cat_path, model=args.model)
        try:  # start keeping codes / tags (or check they are these models') before adding tracks
            if args.hash_model:
                enabled.append(catalog.enable_hash_codes(args.hash_model, rebuild=args.rebuild_hash,
                                                         max_duration=args.max_duration, progress=_progress(args)))
            if args.index_type:
                catalog.set_index(args.index_type)
            if heads is not None:
                enabled.append(catalog.enable_tags(heads, rebuild=args.rebuild_tags,
                                                   max_duration=args.max_duration, progress=_progress(args)))
        except BaseException:
            catalog.close()
            raise
    else:
        catalog = Catalog.create(cat_path, model=args.model,
                                 fingerprint_model=None if args.no_fingerprints else (args.fingerprint_model or "default"),
                                 hash_model=args.hash_model,
                                 tag_heads=None if args.tag_heads == "none" else (heads or "default"),
                                 index=args.index_type or "auto")
    with catalog:
        rep = catalog.add(args.paths, manifest=args.manifest, prune=args.prune,
                          max_duration=args.max_duration, progress=_progress(args), ray=args.ray,
                          ray_address=args.address, ray_workers=args.ray_workers)
        for extra in enabled:  # codes / tags made for tracks already in the catalog, and files that failed then
            rep.hashed += extra.hashed
            rep.tagged += extra.tagged
            rep.failed = extra.failed + rep.failed
        d = rep.to_dict()
        d["catalog"] = str(catalog.root)
        d["tracks"] = len(catalog)

        def text() -> None:
            print(f"{catalog.root}: {d['added']} added, {d['updated']} updated, {d['unchanged']} unchanged, "
                  f"{d['duplicates']} duplicates, {d['pruned']} pruned, {len(rep.failed)} failed; "
                  f"{d['tracks']} tracks in all")
            if rep.audio_seconds:
                print(f"embedded {rep.audio_seconds / 60:.1f} min of audio in {rep.wall_seconds:.1f} s "
                      f"({rep.x_realtime:.0f}x realtime)")
            if rep.fingerprinted:
                print(f"fingerprinted {rep.fingerprinted} tracks that had no fingerprints")
            if rep.hashed:
                print(f"hash codes for {rep.hashed} tracks")
            if rep.tagged:
                print(f"tagged {rep.tagged} tracks that had no tags")
            for path, reason in rep.skipped:
                print(f"  skipped: {_shown(path)}: {reason}", file=sys.stderr)
            for path, reason in rep.failed:
                print(f"  failed: {_shown(path)}: {reason}", file=sys.stderr)
            if rep.failed and not args.allow_failures:
                print(f"{len(rep.failed)} files failed (listed above and in `soundalike info`); everything else is "
                      "indexed. Exit status 1: --allow-failures makes it 0", file=sys.stderr)

        _emit(args, d, text)
    return 1 if rep.failed and not args.allow_failures else 0


def cmd_check(args: argparse.Namespace) -> int:
    from soundalike.index.catalog import Catalog

    d = Catalog.check(_catalog_arg(args), repair=args.repair)
    if d["ok"] or d["repaired"]:  # it must open, too (the model, the schema)
        with Catalog.open(d["catalog"]) as catalog:
            d["tracks"] = len(catalog)

    def text() -> None:
        if d["ok"]:
            print(f"{d['catalog']}: intact ({d['tracks']} tracks)")
            return
        print(f"{d['catalog']}: damaged:")
        for p in d["problems"][:10]:
            print(f"  {p}")
        if not d["repaired"]:
            print("run again with --repair to rebuild it from what is intact (the damaged file is kept)")
            return
        r = d["repair"]
        kept = ", ".join(f"{k} {v}" for k, v in r["kept"].items())
        print(f"repaired: kept {kept}; the damaged file is kept as {r['backup']}")
        lost = {k: v for k, v in r["lost"].items() if v}
        if lost:
            print("lost: " + ", ".join(f"{k} {'all' if v < 0 else v}" for k, v in lost.items()))
        if r["lost_tracks"]:
            print(f"lost tracks {r['lost_tracks'][:20]}: index their folders again to re-embed them")
        print("missing fingerprints, hash codes and tags are recomputed by the next `soundalike index`")
        print(f"{d['tracks']} tracks now; integrity: {'ok' if not d['problems_after'] else d['problems_after']}")

    _emit(args, d, text)
    return 0 if d["ok"] or d["repaired"] else 1


def cmd_similar(args: argparse.Namespace) -> int:
    from soundalike.index.catalog import Catalog

    _threads(args)
    from soundalike.tasks.similar import similar

    with Catalog.open(_catalog_arg(args), model=args.model) as catalog:
        matches = similar(catalog, args.query, k=args.k, offset=args.offset, duration=args.duration, hash=args.hash,
                          where=args.where, max_duration=args.max_duration)
        payload = {"query": args.query, "catalog": str(catalog.root), "k": args.k, "where": args.where or [],
                   "ranking": "hamming" if args.hash else "cosine", "matches": [m.to_dict() for m in matches]}

        def text() -> None:
            how = f" (bits that differ between {catalog.hasher.bits}-bit hash codes)" if args.hash else ""
            cond = f" where {' and '.join(args.where)}" if args.where else ""
            print(f"tracks most similar to {args.query}{how}{cond}:")
            if not matches:
                print("  (none)")
            for m in matches:
                coll = m.track.labels.get("collection")
                extra = f"  [{coll}/{m.track.labels.get('ensemble')}]" if coll else ""
                score = f"{m.hamming:3d} off" if m.hamming is not None else f"{m.score:6.3f}"
                print(f"{m.rank:3d}. {score}  #{m.track.id:<5d} {m.track.display_name}{extra}")

        _emit(args, payload, text)
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    from soundalike.index.catalog import Catalog

    _threads(args)
    from soundalike.tasks.identify import identify

    with Catalog.open(_catalog_arg(args)) as catalog:
        res = identify(catalog, args.clip, offset=args.offset, duration=args.duration, top=args.top,
                       max_duration=args.max_duration)
        payload = {**res.to_dict(), "catalog": str(catalog.root)}

        def text() -> None:
            m = res.match
            if m is None:
                best = res.candidates[0] if res.candidates else None
                hint = (f" (best guess #{best.track.id} {best.track.display_name} at {best.offset:.1f} s, "
                        f"confidence {best.confidence:.2f} < {res.threshold:.2f})") if best else ""
                print(f"no match for {args.clip} in {catalog.root}{hint}")
            else:
                print(f"{args.clip}: #{m.track.id} {m.track.display_name} at {_clock(m.offset)} "
                      f"(confidence {m.confidence:.2f}, {m.windows} windows agree)")
                print(f"  {m.track.path}")
            if args.top > 1 and len(res.candidates) > 1:
                for c in res.candidates[1:]:
                    print(f"  {c.rank}. #{c.track.id} {c.track.display_name} at {_clock(c.offset)} "
                          f"(confidence {c.confidence:.2f})")

        _emit(args, payload, text)
    return 0 if res.match is not None or not args.fail_on_no_match else 1


def _clock(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    m, s = divmod(abs(seconds), 60.0)
    return f"{sign}{int(m)}:{s:04.1f}"


def cmd_fingerprints(args: argparse.Namespace) -> int:
    from soundalike.index.catalog import Catalog

    _threads(args)
    with Catalog.open(_catalog_arg(args)) as catalog:
        rep = catalog.enable_fingerprints(args.fingerprint_model, rebuild=args.rebuild, progress=_progress(args),
                                          max_duration=args.max_duration)
        d = {"catalog": str(catalog.root), "fingerprinted": rep.fingerprinted,
             "failed": [{"path": p, "reason": r} for p, r in rep.failed],
             "fingerprints": catalog.info()["fingerprints"], "wall_seconds": round(rep.wall_seconds, 2)}

        def text() -> None:
            f = d["fingerprints"]
            print(f"{catalog.root}: fingerprinted {rep.fingerprinted} tracks in {rep.wall_seconds:.1f} s; "
                  f"{f['windows']} windows of {f['bits']} bits ({f['bytes_per_hour'] / 1000:.0f} KB per hour) "
                  f"with {f['model']}")
            for path, reason in rep.failed:
                print(f"  failed: {path}: {reason}", file=sys.stderr)

        _emit(args, d, text)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import numpy as np

    from soundalike.index.catalog import Catalog

    with Catalog.open(_catalog_arg(args), model=args.model) as catalog:
        d = catalog.info()
        if args.tracks:
            d["track_list"] = [t.to_dict() for t in catalog.tracks()]
            if catalog.has_tags:
                ids, scores = catalog.tag_matrix()
                by_id = dict(zip(ids.tolist(), scores, strict=True))
                names = catalog.tag_names
                for t in d["track_list"]:
                    row = by_id.get(t["id"])
                    if row is not None:
                        t["top_tags"] = {names[j]: round(float(row[j]), 3) for j in np.argsort(-row)[:3]}
        d["failures"] = [{"path": p, "reason": r} for p, r in catalog.failures()]

        def text() -> None:
            print(f"catalog      {d['catalog']}")
            print(f"tracks       {d['tracks']} ({d['hours']:.2f} h, {d['chunks']} chunks)")
            print(f"model        {d['model']} ({d['encoder']}, {d['embed_dim']}-d, fingerprint {d['model_fingerprint']})")
            fe = d["frontend"]
            print(f"front-end    {fe['sample_rate']} Hz, n_fft {fe['n_fft']}, hop {fe['hop_length']}, "
                  f"{fe['n_mels']} mels, chunks of {fe['chunk_frames']} frames")
            fpi = d.get("fingerprints")
            if fpi:
                print(f"fingerprints {fpi['model']} ({fpi['bits']}-bit codes every {fpi['hop_seconds']:g} s): "
                      f"{fpi['tracks']} tracks, {fpi['windows']} windows, {fpi['bytes_per_hour'] / 1000:.0f} KB per hour")
            else:
                print("fingerprints none (`soundalike fingerprints` adds them; `identify` needs them)")
            hci = d.get("hash_codes")
            if hci:
                print(f"hash codes   {hci['model']} ({hci['bits']} bits per track): {hci['tracks']} tracks")
            vx = d["vector_index"]
            print(f"vector index {vx['kind']} (asked: {vx['asked']})")
            tgi = d.get("tags")
            if tgi:
                print(f"tags         {tgi['heads']} ({tgi['n_tags']} tags): {tgi['tracks']} tracks")
            else:
                print("tags         none (`soundalike index ... --tag-heads default` adds them)")
            print(f"on disk      {d['disk_bytes'] / 1e6:.1f} MB")
            for key, counts in d["labels"].items():
                top = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:8])
                print(f"{key:<12} {top}")
            if d["failures"]:
                print(f"failed files {len(d['failures'])}:")
                for f in d["failures"][:20]:
                    print(f"  {_shown(f['path'])}: {f['reason']}")
            if args.tracks:
                for t in d["track_list"]:
                    top = ", ".join(t.get("top_tags", {}))
                    print(f"#{t['id']:<5d} {t['duration']:7.1f}s  {_shown(t['path'])}" + (f"  [{top}]" if top else ""))

        _emit(args, d, text)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from soundalike.train.args import load_config
    from soundalike.train.solver import train

    cfg = load_config(args.config, data=args.data or None, manifest=args.manifest, out=args.out,
                      encoder=args.encoder, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      seed=args.seed, threads=args.threads, model_name=args.name, objective=args.objective,
                      init_from=args.init_from)
    progress = _progress(args)
    log = (lambda msg: print(msg, file=sys.stderr)) if not args.json else None
    path, report = train(cfg, progress=progress, log=log)

    def text() -> None:
        last = report["history"][-1] if report["history"] else {}
        print(f"trained {report['trained_steps']} steps (now at {report['steps']}) in {report['seconds']:.0f} s; "
              f"loss {last.get('loss', float('nan')):.3f}, valid accuracy {last.get('valid_acc', float('nan')):.3f}")
        print(f"model: {path} (+ .json); use it with --model {path}")

    _emit(args, {k: v for k, v in report.items()}, text)
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from soundalike.data.debian import EVAL_PACKAGES, TRAIN_PACKAGES, fetch_debian_music

    if args.dataset == "fma":
        return _datasets_fma(args)
    if args.dataset != "debian-music":  # pragma: no cover - argparse choices guard this
        raise SoundalikeError(f"unknown dataset {args.dataset}")
    packages = args.packages or (list(EVAL_PACKAGES) if args.eval_packages else list(TRAIN_PACKAGES))
    log = (lambda msg: print(msg, file=sys.stderr)) if not (args.json or args.quiet) else None
    report = fetch_debian_music(args.out, packages, min_seconds=args.min_seconds, progress=_progress(args), log=log)

    def text() -> None:
        print(f"{report.tracks} tracks, {report.hours:.2f} h from {len(report.packages)} packages "
              f"({report.skipped_short} shorter than {args.min_seconds:g} s and {report.skipped_duplicate} "
              f"duplicates left out)")
        print(f"manifest: {report.manifest}")
        print(f"index it: soundalike index {args.out}/audio --manifest {report.manifest} --catalog CATALOG")

    _emit(args, report.to_dict(), text)
    return 0


def _datasets_fma(args: argparse.Namespace) -> int:
    from soundalike.data.fma import read_fma, write_fma_manifest

    if not args.fma_root or not args.metadata:
        raise SoundalikeError("fma needs --fma-root (the fma_small/medium/large folder) and --metadata "
                              "(the fma_metadata folder or its tracks.csv)")
    fma = read_fma(args.metadata, args.fma_root, subset=args.subset)
    manifest = write_fma_manifest(fma, os.path.join(args.out, "manifest.jsonl"))
    d = {"tracks": len(fma.tracks), "genres": fma.genres, "no_genre": fma.no_genre,
         "missing_audio": fma.missing_audio, "manifest": str(manifest)}

    def text() -> None:
        print(f"{len(fma.tracks)} FMA tracks in {len(fma.genres)} top genres ({fma.no_genre} without a top genre "
              f"and {fma.missing_audio} without audio left out)")
        print(f"manifest: {manifest} (label = top genre; the audio stays under {args.fma_root})")

    _emit(args, d, text)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from soundalike.evaluation.run import EvalConfig, evaluate

    _threads(args)
    cfg = EvalConfig(label_key=args.label_key, excerpt_seconds=args.excerpt_seconds,
                     excerpts_per_track=args.excerpts, noise_snr_db=args.snr, mp3_kbps=args.mp3_kbps,
                     catalog_hop_frames=args.hop_frames, max_tracks=args.max_tracks, plots=not args.no_plots,
                     seed=args.seed)
    report = evaluate(_catalog_arg(args), args.out, config=cfg, compare=args.compare, progress=_progress(args))

    def text() -> None:
        from soundalike.evaluation.run import markdown_report

        print(markdown_report(report))
        print(f"written to {args.out}/: " + ", ".join(os.path.basename(f) for f in report["files"]))

    _emit(args, report, text)
    return 0


def cmd_teacher_tags(args: argparse.Namespace) -> int:
    from soundalike.index.catalog import walk_audio
    from soundalike.tagging.teacher import TeacherConfig, run_teacher

    files = list(walk_audio(args.paths))
    tags = run_teacher(files, args.out, config=TeacherConfig(python=args.teacher_python, model=args.teacher_model),
                       progress=_progress(args))
    d = {"out": args.out, "files": len(tags.scores), "tags": list(tags.tags), "chunk_seconds": tags.chunk_seconds,
         "failed": tags.info.get("failed", [])}

    def text() -> None:
        print(f"{args.out}: teacher scores for {d['files']} files ({len(tags.tags)} tags every "
              f"{tags.chunk_seconds:g} s); {len(d['failed'])} failed")
        for f in d["failed"]:
            print(f"  failed: {f}", file=sys.stderr)

    _emit(args, d, text)
    return 0


def _print_tags(result: Any, args: argparse.Namespace) -> None:
    print(f"{result.path}: {result.duration:.1f} s")
    for t, v in result.top(args.top):
        print(f"  {v:6.3f}  {t}")
    if args.timeline:
        top = [t for t, _ in result.top(min(args.top, 5))]
        cols = [result.index(t) for t in top]
        print(f"timeline (a {result.chunk_seconds:.2f} s chunk every {result.hop_seconds:.2f} s; "
              f"the track's top {len(top)} tags):")
        print("  start    end  " + "  ".join(f"{t[:12]:>12}" for t in top))
        for start, row in zip(result.times, result.timeline, strict=True):
            print(f"  {_clock(start)} {_clock(start + result.chunk_seconds)} "
                  + "  ".join(f"{row[j]:12.3f}" for j in cols))


def cmd_tag(args: argparse.Namespace) -> int:
    from soundalike.tagging.tagger import load_tagger

    _threads(args)
    catalog = None
    if args.catalog or (os.environ.get("SOUNDALIKE_CATALOG") and not os.path.isfile(args.query or "")):
        from soundalike.index.catalog import Catalog

        catalog = Catalog.open(_catalog_arg(args), model=args.model)
    try:
        if args.list_tags:
            tags = catalog.tag_names if catalog is not None else load_tagger(args.heads, model=args.model).tags
            _emit(args, {"tags": list(tags)}, lambda: print("\n".join(tags)))
            return 0
        if not args.query:
            raise SoundalikeError("give an audio FILE to tag (or a track id with --catalog; --list-tags lists tags)")
        if catalog is not None:
            from soundalike.errors import TrackNotFoundError

            try:
                result = catalog.track_tags(args.query)
            except TrackNotFoundError:
                if not os.path.isfile(args.query):
                    raise
                result = catalog.tagger.tag_file(args.query, offset=args.offset, duration=args.duration,
                                                 max_duration=args.max_duration)
        else:
            if not os.path.exists(args.query):
                raise SoundalikeError(f"{args.query} does not exist (a track id needs --catalog DIR)")
            tagger = load_tagger(args.heads, model=args.model)
            result = tagger.tag_file(args.query, offset=args.offset, duration=args.duration,
                                     max_duration=args.max_duration)
        payload = result.to_dict(timeline=args.timeline)
        _emit(args, payload, lambda: _print_tags(result, args))
    finally:
        if catalog is not None:
            catalog.close()
    return 0


def cmd_train_head(args: argparse.Namespace) -> int:
    from soundalike.tagging.train import TagTrainConfig, fit_head

    _threads(args)
    defaults = TagTrainConfig()
    cfg = TagTrainConfig(head=args.head, steps=args.steps or defaults.steps, lr=args.lr or defaults.lr,
                         seed=args.seed, threads=args.threads or defaults.threads)
    _, report = fit_head(args.dataset, args.out, model=args.model, cfg=cfg, name=args.name, progress=_progress(args),
                         teacher_dir=args.teacher_dir, soundfont=args.soundfont, fma_root=args.fma_root,
                         metadata=args.metadata, subset=args.subset)

    def text() -> None:
        acc = f", training accuracy {report['train_accuracy']:.3f}" if "train_accuracy" in report else ""
        print(f"trained {args.head} on {report['rows']} chunks of {report['groups']} "
              f"{'tracks' if args.dataset != 'instruments' else 'clips'} ({report['tags']} tags{acc}) in "
              f"{report['wall_seconds']:.0f} s -> {report['out']}")
        print(f"use it: soundalike tag FILE --heads {report['out']}")

    _emit(args, report, text)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from soundalike.serve.app import ServeConfig, serve
    except ImportError as exc:  # fastapi / uvicorn missing
        raise SoundalikeError(f"the web app needs the serve extra ({exc.name} is missing): "
                              "pip install 'soundalike[serve]'") from exc
    _threads(args)
    shards = (args.shards or 2) if args.ray else 0
    serve(ServeConfig(catalog=_catalog_arg(args), host=args.host, port=args.port, max_upload_mb=args.max_upload_mb,
                      decode_timeout=args.timeout, workers=args.workers, max_duration=args.max_duration,
                      shards=shards, ray_address=args.address))
    return 0


def cmd_listens(args: argparse.Namespace) -> int:
    from soundalike.index.catalog import Catalog

    if args.action in ("import", "simulate") and not args.file:
        raise ParameterError(f"listens {args.action} needs a FILE.csv")
    with Catalog.open(_catalog_arg(args)) as catalog:
        if args.action == "simulate":
            return _listens_simulate(args, catalog)
        if args.action == "fit":
            return _listens_fit(args, catalog)
        rep = catalog.import_listens(args.file, skip_invalid=args.skip_invalid)
        d = rep.to_dict()
        d["catalog"] = str(catalog.root)

        def text() -> None:
            print(f"{catalog.root}: imported {rep.imported} of {rep.rows} listens ({rep.users} users); "
                  f"{rep.duplicates} duplicates skipped" + (f", {rep.invalid} invalid rows skipped" if rep.invalid else ""))
            for line, problem in rep.problems[:20]:
                print(f"  line {line}: {problem}", file=sys.stderr)

        _emit(args, d, text)
    return 0


def _listens_fit(args: argparse.Namespace, catalog: Any) -> int:
    from soundalike.recommend.hybrid import model_for

    model = model_for(catalog, refit=True)
    tun = model.tuning
    tuning = {k: v for k, v in tun.to_dict().items() if k != "grid"}
    tuning["users_held_out"] = tuning.pop("users")
    d = {"catalog": str(catalog.root), "users": len(model.users), "tracks": len(model.ids),
         "tracks_with_listens": int(model.factors.warm.sum()), **tuning}

    def text() -> None:
        print(f"{catalog.root}: fitted ALS on {len(model.users)} users x {int(model.factors.warm.sum())} played "
              f"tracks (of {len(model.ids)})")
        if tun.tuned:
            print(f"blend tuned on held-out listens: weight {tun.weight} (listening history) / "
                  f"{round(1 - tun.weight, 2)} (audio), new-track offset {tun.offset}")
            print(f"held-out NDCG@{model.config.k}: hybrid {tun.ndcg:.4f}, audio only {tun.audio_ndcg:.4f}, "
                  f"ALS only {tun.als_ndcg:.4f} ({tun.note})")
        else:
            print(f"not tuned: {tun.note}")

    _emit(args, d, text)
    return 0


def _listens_simulate(args: argparse.Namespace, catalog: Any) -> int:
    import csv

    from soundalike.recommend.simulate import SimConfig, catalog_features, simulate

    ids, feats, labels, space = catalog_features(catalog)
    sim = simulate(ids, labels, feats, SimConfig(users=args.users, seed=args.seed, new_share=args.new_share))
    outs = [(Path(args.file), sim.first if args.held_out else sim.rows)]
    if args.held_out:
        outs.append((Path(args.held_out), sim.second))
    for path, rows in outs:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["user", "track", "timestamp", "plays"])
            w.writerows(rows)
    d = {"catalog": str(catalog.root), "users": args.users, "seed": args.seed, "audio_taste_space": space,
         "listens": len(sim.rows), "held_out_listens": len(sim.second) if args.held_out else 0,
         "new_tracks": len(sim.new_tracks), "files": [str(p) for p, _ in outs]}

    def text() -> None:
        print(f"simulated {len(sim.rows)} listens of {args.users} users over {len(ids)} tracks "
              f"(audio tastes in {space}); {len(sim.new_tracks)} tracks released in the second period")
        for path, rows in outs:
            print(f"  {path}: {len(rows)} listens")
        print(f"next: soundalike listens import {outs[0][0]} --catalog {catalog.root}")

    _emit(args, d, text)
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from soundalike.index.catalog import Catalog
    from soundalike.recommend.rank import recommend_ranking

    with Catalog.open(_catalog_arg(args)) as catalog:
        ranking = recommend_ranking(catalog, user=args.user, seed_track=args.seed_track, k=args.k,
                                    max_per=args.max_per, per=args.per, exclude_heard=not args.include_heard,
                                    method=args.method)
        payload = {"user": args.user, "seed_track": args.seed_track, "k": args.k, **ranking.to_dict()}

        def text() -> None:
            b = ranking.blend
            how = (f"hybrid: listening history x {b['weight']}, audio x {round(1 - b['weight'], 2)}"
                   + (f", new tracks {b['offset']:+}" if args.user else "") if ranking.method == "hybrid" and b["tuned"] else
                   f"{ranking.method}" + (f" ({b['note']})" if b.get("note") and ranking.method != "als" else ""))
            who = f"user {args.user}" if args.user else f"track #{args.seed_track}"
            print(f"recommended for {who} [{how}]:")
            for r in ranking.recommendations:
                print(f"{r.rank:3d}. {r.score:6.3f}  #{r.track.id:<5d} {r.track.display_name}  ({r.reason})")

        _emit(args, payload, text)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from soundalike.models.factory import DEFAULT_MODEL, list_pretrained
    from soundalike.models.heads import HEADS, list_shipped_heads
    from soundalike.models.registry import get_encoder_entry, list_encoders

    payload: dict[str, Any] = {
        "encoders": {n: get_encoder_entry(n).description for n in list_encoders()},
        "pretrained": list_pretrained(),
        "default": DEFAULT_MODEL,
        "heads": sorted(HEADS),
        "shipped_heads": list_shipped_heads(),
    }

    def text() -> None:
        print("encoders (for `soundalike train --encoder`):")
        for n, desc in payload["encoders"].items():
            print(f"  {n:<24} {desc}")
        print("shipped models (for --model):")
        for n in payload["pretrained"]:
            print(f"  {n}{'  (default)' if n == DEFAULT_MODEL else ''}")
        print("tag heads (for `soundalike train-head --head`): " + ", ".join(payload["heads"]))
        print("shipped tag heads (for --heads / --tag-heads): " + ", ".join(payload["shipped_heads"]))

    _emit(args, payload, text)
    return 0


# ------------------------------------------------------------------ parser


def _encoder_choices() -> list[str]:
    from soundalike.models.registry import list_encoders

    return list_encoders()


def build_parser() -> argparse.ArgumentParser:
    from soundalike.data.render import COLLECTIONS, ENSEMBLES

    p = argparse.ArgumentParser(
        prog="soundalike",
        description="Find music that sounds alike: index audio into a catalog of CNN embeddings, then ask "
                    "which tracks sound most like a file or a track, or which track (and where) a short, degraded "
                    "excerpt comes from.",
        epilog="Start with: soundalike demo-corpus demo/corpus && soundalike index demo/corpus/audio "
               "--catalog demo/catalog --manifest demo/corpus/manifest.jsonl && soundalike similar 1 --catalog demo/catalog",
    )
    p.add_argument("--version", action="version", version=f"soundalike {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(sp: argparse.ArgumentParser, *, catalog: bool = False, model: bool = False, threads: bool = False) -> None:
        sp.add_argument("--json", action="store_true", help="print one JSON document instead of text")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        if catalog:
            sp.add_argument("--catalog", "-c", metavar="DIR", help="catalog folder (default: $SOUNDALIKE_CATALOG)")
        if model:
            sp.add_argument("--model", "-m", metavar="NAME|PATH",
                            help="model: a shipped name or a .safetensors path (default: the catalog's own; "
                                 "for a new catalog, the shipped default)")
        if threads:
            sp.add_argument("--threads", type=int, default=None, metavar="N",
                            help="CPU threads for the CNN and search (default: torch's choice)")

    def excerpt(sp: argparse.ArgumentParser, what: str) -> None:
        sp.add_argument("--offset", type=float, default=0.0, help=f"start of the excerpt of {what} to use, seconds")
        sp.add_argument("--duration", type=float, default=None, help=f"length of the excerpt of {what}, seconds")
        max_duration(sp)

    def max_duration(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--max-duration", type=float, default=DEFAULT_MAX_DURATION, metavar="SECONDS",
                        help=f"refuse audio longer than this (default {DEFAULT_MAX_DURATION:g}; long files are read "
                             "in bounded memory whatever the limit)")

    sp = sub.add_parser("demo-corpus", help="render the demo corpus (music21 scores, General MIDI soundfont)",
                        description="Render works from music21's corpus to audio with tinysoundfont and the "
                                    "TimGM6mb General MIDI soundfont, in several instrumentations, and write "
                                    "OUT/manifest.jsonl with labels. Deterministic for a seed.")
    sp.add_argument("out", metavar="OUT", help="output folder")
    sp.add_argument("--works-per-collection", type=int, default=6, metavar="N",
                    help="works drawn from each collection (default 6)")
    sp.add_argument("--instrumentations", type=int, default=2, metavar="K",
                    help="versions of each work; the first keeps the score's own programs (default 2)")
    sp.add_argument("--collections", nargs="+", choices=COLLECTIONS, metavar="NAME",
                    help=f"collections to draw from (default all: {', '.join(COLLECTIONS)})")
    sp.add_argument("--ensembles", nargs="+", choices=list(ENSEMBLES), metavar="NAME",
                    help=f"General MIDI ensembles for re-instrumentation (default all: {', '.join(ENSEMBLES)})")
    sp.add_argument("--no-original", action="store_true", help="re-instrument every version")
    sp.add_argument("--max-seconds", type=float, default=60.0, help="cut each render here (default 60)")
    sp.add_argument("--sample-rate", type=int, default=22050, help="output rate in Hz (default 22050)")
    sp.add_argument("--format", choices=["flac", "wav", "ogg", "mp3"], default="flac", help="audio format (default flac)")
    sp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sp.add_argument("--jobs", "-j", type=int, default=None, help="worker processes (default: all cores)")
    sp.add_argument("--soundfont", metavar="SF2", help="a .sf2 file instead of pretty_midi's TimGM6mb.sf2")
    common(sp)
    sp.set_defaults(func=cmd_demo_corpus)

    sp = sub.add_parser("index", help="add audio files and folders to a catalog (incremental, crash-safe)",
                        description="Walk folders for audio (mp3, ogg, opus, flac, wav, m4a, ...), embed new and "
                                    "changed files, skip unchanged ones, and update the search index. Safe to kill "
                                    "and re-run. Creates the catalog if it does not exist.")
    sp.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    sp.add_argument("--manifest", metavar="JSONL", help="labels: JSON lines with a 'path' relative to the file")
    sp.add_argument("--prune", action="store_true", help="remove tracks under PATH whose file is gone")
    max_duration(sp)
    sp.add_argument("--fingerprint-model", metavar="NAME|PATH",
                    help="fingerprint model for `identify`, for a new catalog (default: the shipped "
                         "fingerprint_cnn-music)")
    sp.add_argument("--no-fingerprints", action="store_true",
                    help="a new catalog keeps no fingerprints (smaller, faster; `identify` will not work)")
    sp.add_argument("--hash-model", metavar="NAME|PATH",
                    help="also keep this hash model's binary code per track, for `similar --hash` "
                         "(e.g. the shipped hash_cnn-music; 'default' names it)")
    sp.add_argument("--rebuild-hash", action="store_true",
                    help="replace the hash codes of another hash model with --hash-model's")
    sp.add_argument("--tag-heads", metavar="HEADS", default=None,
                    help="tag every track with these heads (comma-separated names or paths; 'default': the shipped "
                         "tags-mtt,instruments-gm; 'none': no tags). New catalogs use the default when it fits "
                         "the model")
    sp.add_argument("--rebuild-tags", action="store_true", help="replace the tags of other heads with --tag-heads'")
    sp.add_argument("--ray", action="store_true",
                    help="decode and embed on a Ray cluster (Ray Data, one model per worker actor); needs "
                         "pip install 'soundalike[ray]'")
    sp.add_argument("--address", metavar="ADDR", help="--ray: the cluster to join (default: the running one, "
                    "else a local one)")
    sp.add_argument("--ray-workers", type=int, default=2, metavar="N", help="--ray: worker actors (default 2)")
    sp.add_argument("--index-type", choices=["auto", "flat", "hnsw", "ivfpq"], default=None,
                    help="vector index: auto (default: exact flat up to 200k tracks, HNSW above), flat, hnsw, or "
                         "ivfpq (compressed codes + exact re-ranking, when memory is the limit); stored in the catalog")
    sp.add_argument("--allow-failures", action="store_true",
                    help="exit 0 even when some files failed (default: exit 1 after indexing everything else)")
    common(sp, catalog=True, model=True, threads=True)
    sp.set_defaults(func=cmd_index)

    sp = sub.add_parser("check", help="check a catalog's database for damage; --repair rebuilds it",
                        description="Run SQLite's integrity check on the catalog. With --repair, a damaged database "
                                    "is rebuilt from every row that can still be read: the damaged file is kept "
                                    "beside it, lost fingerprints, hash codes and tags are recomputed by the next "
                                    "`soundalike index`, and lost tracks are listed (index their folder again). "
                                    "Exit status 1 when the catalog is damaged and was not repaired.")
    sp.add_argument("--repair", action="store_true", help="rebuild a damaged database from what is intact")
    common(sp, catalog=True)
    sp.set_defaults(func=cmd_check)

    sp = sub.add_parser("identify", help="which catalog track a short, degraded excerpt comes from, and where",
                        description="Match CLIP (a few seconds of audio: a recording, a re-encode, a pitch- or "
                                    "tempo-changed copy) against the catalog's fingerprints and print the track, "
                                    "the offset into it and a calibrated confidence, or 'no match' when the "
                                    "confidence is below the threshold chosen on held-out data (at most 1% "
                                    "false matches on music that is not in the catalog).")
    sp.add_argument("clip", metavar="CLIP", help="audio file (3-10 s works best; longer files: use --duration)")
    excerpt(sp, "CLIP")
    sp.add_argument("--top", type=int, default=1, help="also list the next candidates (default 1: the best only)")
    sp.add_argument("--fail-on-no-match", action="store_true", help="exit with status 1 when nothing matches")
    common(sp, catalog=True, threads=True)
    sp.set_defaults(func=cmd_identify)

    sp = sub.add_parser("fingerprints", help="add (or rebuild) the fingerprints `identify` needs",
                        description="Fingerprint every catalog track that has none: a catalog made with "
                                    "--no-fingerprints or by an older soundalike. --rebuild replaces fingerprints "
                                    "of another fingerprint model.")
    sp.add_argument("--fingerprint-model", metavar="NAME|PATH", help="default: the shipped fingerprint_cnn-music")
    sp.add_argument("--rebuild", action="store_true", help="replace existing fingerprints of another model")
    max_duration(sp)
    common(sp, catalog=True, threads=True)
    sp.set_defaults(func=cmd_fingerprints)

    sp = sub.add_parser("similar", help="the tracks that sound most like a file or a catalog track",
                        description="Rank catalog tracks by cosine similarity of song embeddings to QUERY: an "
                                    "audio file (embedded with the catalog's model) or a track id. With --hash, "
                                    "rank by Hamming distance of compact binary codes instead (a catalog indexed "
                                    "with --hash-model).")
    sp.add_argument("query", metavar="QUERY", help="audio file, or a track id from `soundalike info --tracks`")
    sp.add_argument("-k", type=int, default=10, help="how many tracks (default 10)")
    sp.add_argument("--hash", action="store_true",
                    help="search the catalog's hash codes (FAISS binary index) instead of its embeddings")
    sp.add_argument("--where", action="append", metavar="COND",
                    help="keep only tracks whose stored tags meet COND, e.g. \"tag:piano>0.5\" (repeat: all must "
                         "hold; `soundalike tag --list-tags --catalog DIR` lists the tags)")
    excerpt(sp, "QUERY")
    common(sp, catalog=True, model=True, threads=True)
    sp.set_defaults(func=cmd_similar)

    sp = sub.add_parser("info", help="catalog statistics, model, labels and failed files",
                        description="Print what a catalog holds and which model filled it.")
    sp.add_argument("--tracks", action="store_true", help="also list every track")
    common(sp, catalog=True, model=True)
    sp.set_defaults(func=cmd_info)

    sp = sub.add_parser("train", help="train an encoder (InfoNCE, or an autoencoder) on folders of audio",
                        description="Train a registered encoder. Objective infonce: two augmented chunks per "
                                    "track (pitch, tempo, EQ, reverb, noise, MP3, masking; see configs/debian.yaml), "
                                    "in-batch negatives, temperature 0.1. Objective autoencoder: a decoder "
                                    "reconstructs the chunk from the embedding. Resumes from OUT/last.ckpt; writes "
                                    "OUT/model.safetensors + OUT/model.json.")
    sp.add_argument("--config", metavar="YAML", help="training config (see configs/); flags override it")
    sp.add_argument("--data", nargs="+", metavar="PATH", help="folders or files of audio")
    sp.add_argument("--manifest", metavar="JSONL", help="labels; validation then holds out whole works")
    sp.add_argument("--out", metavar="DIR", help="run folder (checkpoints, model)")
    sp.add_argument("--encoder", choices=_encoder_choices(), help="registered encoder (default contrastive_cnn)")
    sp.add_argument("--name", help="name recorded in the exported model")
    sp.add_argument("--steps", type=int, help="optimiser steps")
    sp.add_argument("--batch-size", type=int, help="tracks per batch")
    sp.add_argument("--lr", type=float, help="peak learning rate")
    sp.add_argument("--seed", type=int, help="random seed")
    sp.add_argument("--objective", choices=["infonce", "autoencoder"], help="training objective (default infonce)")
    sp.add_argument("--init-from", metavar="NAME|PATH", help="start from this model's weights")
    sp.add_argument("--threads", type=int, help="CPU threads")
    sp.add_argument("--json", action="store_true", help="print the training report as JSON")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("datasets", help="fetch real music to train and evaluate on (Debian game soundtracks; FMA)",
                        description="debian-music: `apt-get download` game-music packages (nothing is installed), "
                                    "extract their music (also from .pk3/.zip archives and extension-less Ogg files), "
                                    "keep tracks of at least --min-seconds, drop duplicates by content hash, and "
                                    "write OUT/audio/PACKAGE/..., OUT/manifest.jsonl (label = package) and the "
                                    "packages' copyright files under OUT/licenses/. Runs add up: fetching other "
                                    "packages into the same OUT keeps the earlier ones. fma: read an FMA copy you "
                                    "already have (--fma-root, --metadata) and write OUT/manifest.jsonl "
                                    "(label = top genre).")
    sp.add_argument("dataset", choices=["debian-music", "fma"], help="which data set")
    sp.add_argument("out", metavar="OUT", help="folder for audio, manifest and the downloaded .debs (fma: the "
                                               "manifest only)")
    sp.add_argument("--fma-root", metavar="DIR", help="fma: the folder of XYZ/XYZABC.mp3 files you downloaded")
    sp.add_argument("--metadata", metavar="DIR|CSV", help="fma: fma_metadata (or its tracks.csv)")
    sp.add_argument("--subset", choices=["small", "medium", "large"], help="fma: only this subset")
    sp.add_argument("--packages", nargs="+", metavar="PKG",
                    help="Debian packages (default: the 16 packages the shipped model was trained on)")
    sp.add_argument("--eval-packages", action="store_true",
                    help="fetch the held-out evaluation packages instead (never trained on)")
    sp.add_argument("--min-seconds", type=float, default=30.0, help="shortest track kept (default 30)")
    common(sp)
    sp.add_argument("--progress", action="store_true", help="progress bar even when not on a terminal")
    sp.set_defaults(func=cmd_datasets)

    sp = sub.add_parser("evaluate", help="measure a catalog's model beside baselines; JSON + Markdown + plots",
                        description="Over the labelled tracks of a catalog: excerpt -> track retrieval (clean "
                                    "and noisy+MP3 excerpts: recall@1, recall@10, MRR), same-label retrieval "
                                    "(precision@10, MAP, NDCG@10), a linear probe and PCA/t-SNE maps, for the "
                                    "catalog's model, the untrained encoder, MFCC statistics and any --compare "
                                    "models. Writes OUT/evaluation.json, OUT/evaluation.md and PNG plots.")
    sp.add_argument("--out", "-o", required=True, metavar="DIR", help="folder for the report and plots")
    sp.add_argument("--label-key", default="label", help="manifest label that groups tracks (default: label)")
    sp.add_argument("--compare", nargs="+", metavar="NAME|PATH", help="other models to evaluate in the same run")
    sp.add_argument("--excerpt-seconds", type=float, default=6.0, help="query excerpt length (default 6)")
    sp.add_argument("--excerpts", type=int, default=2, help="excerpts per track (default 2)")
    sp.add_argument("--snr", type=float, default=10.0, help="noise level of the noisy excerpts, dB SNR (default 10)")
    sp.add_argument("--mp3-kbps", type=float, default=64.0, help="MP3 bitrate of the noisy excerpts (default 64)")
    sp.add_argument("--hop-frames", type=int, default=32, help="hop between catalog chunks in frames (default 32)")
    sp.add_argument("--max-tracks", type=int, help="evaluate a seeded sample of this many tracks")
    sp.add_argument("--no-plots", action="store_true", help="numbers only (no matplotlib/scikit-learn needed)")
    sp.add_argument("--seed", type=int, default=0, help="seed for excerpts, noise and t-SNE")
    common(sp, catalog=True, threads=True)
    sp.add_argument("--progress", action="store_true", help="progress bar even when not on a terminal")
    sp.set_defaults(func=cmd_evaluate)

    sp = sub.add_parser("teacher-tags", help="score audio with the musicnn teacher (offline, its own environment)",
                        description="Run musicnn (MTT_musicnn: 50 MagnaTagATune tags, one row per 3 s) over audio "
                                    "files and folders, in the teacher environment (numpy 1.26 + tensorflow-cpu; "
                                    "see README), and save the scores with how they were made into OUT. Resumes a "
                                    "killed run; refuses a teacher that gives every track the same tags.")
    sp.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    sp.add_argument("--out", "-o", required=True, metavar="DIR", help="folder for the scores and teacher.json")
    sp.add_argument("--teacher-python", default=".venv-teacher/bin/python", metavar="PYTHON",
                    help="the teacher environment's interpreter (default .venv-teacher/bin/python)")
    sp.add_argument("--teacher-model", default="MTT_musicnn", help="musicnn model (default MTT_musicnn)")
    common(sp)
    sp.set_defaults(func=cmd_teacher_tags)

    sp = sub.add_parser("tag", help="what is this? tag scores (genre, mood, instruments, vocals), also over time",
                        description="Score QUERY with the tag heads (default: the shipped tags-mtt, 50 MagnaTagATune "
                                    "tags distilled from musicnn, and instruments-gm, 16 General MIDI instrument "
                                    "families as family/NAME). Whole-track scores are the mean over chunks; "
                                    "--timeline adds one row per 3 s chunk, about every 1.5 s. With --catalog, "
                                    "QUERY may be a track id or path whose stored tags are shown (their timeline "
                                    "has the catalog's 3 s hop).")
    sp.add_argument("query", metavar="QUERY", nargs="?", help="audio file, or a track id with --catalog")
    sp.add_argument("--timeline", action="store_true", help="also print scores per chunk")
    sp.add_argument("--top", type=int, default=10, help="tags to print (default 10; --json gives all)")
    sp.add_argument("--heads", metavar="HEADS", default=None,
                    help="comma-separated head names or paths (default: tags-mtt,instruments-gm)")
    sp.add_argument("--list-tags", action="store_true", help="list the tag names and exit")
    excerpt(sp, "QUERY")
    common(sp, catalog=True, model=True, threads=True)
    sp.set_defaults(func=cmd_tag)

    sp = sub.add_parser("train-head", help="train a tag head on the frozen encoder (teacher, instruments or FMA)",
                        description="Train a tag head that reads the encoder's block maps, so tags come from the "
                                    "embedding's own pass. --dataset teacher: soft targets from a `soundalike "
                                    "teacher-tags` folder; instruments: General MIDI notes and phrases rendered "
                                    "with --soundfont, labelled by family; fma: FMA's top genres (--fma-root, "
                                    "--metadata).")
    sp.add_argument("--dataset", required=True, choices=["teacher", "instruments", "fma"], help="training data")
    sp.add_argument("--out", "-o", required=True, metavar="PATH", help="where to save the head (PATH.safetensors "
                    "+ PATH.json)")
    sp.add_argument("--head", default="tag_conv", choices=["tag_conv", "tag_mlp"],
                    help="tag_conv (a conv branch off block 2; default) or tag_mlp (on the pooled features)")
    sp.add_argument("--name", help="name recorded in the head")
    sp.add_argument("--teacher-dir", metavar="DIR", help="teacher: a folder from `soundalike teacher-tags`")
    sp.add_argument("--soundfont", metavar="SF2", help="instruments: render with this .sf2 (default TimGM6mb)")
    sp.add_argument("--fma-root", metavar="DIR", help="fma: the folder of XYZ/XYZABC.mp3 files")
    sp.add_argument("--metadata", metavar="DIR|CSV", help="fma: fma_metadata (or its tracks.csv)")
    sp.add_argument("--subset", choices=["small", "medium", "large"], help="fma: only this subset")
    sp.add_argument("--steps", type=int, help="optimiser steps (default 2000)")
    sp.add_argument("--lr", type=float, help="peak learning rate (default 0.002)")
    sp.add_argument("--seed", type=int, default=0, help="random seed")
    sp.add_argument("--progress", action="store_true", help="progress bar even when not on a terminal")
    common(sp, model=True, threads=True)
    sp.set_defaults(func=cmd_train_head)

    sp = sub.add_parser("serve", help="the web app and JSON API over a catalog (upload, similar, tags, map)",
                        description="Start the web app (FastAPI + uvicorn) on a catalog: upload a song to see what "
                                    "sounds like it, its tags and, for an excerpt, where it comes from; browse and "
                                    "search the catalog and its embedding map. The JSON API is described at /docs. "
                                    "Binds to 127.0.0.1 unless --host says otherwise.")
    sp.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    sp.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    sp.add_argument("--max-upload-mb", type=float, default=50.0, help="refuse bigger uploads with 413 (default 50)")
    sp.add_argument("--timeout", type=float, default=30.0,
                    help="seconds allowed to decode and analyse one upload (default 30)")
    sp.add_argument("--workers", type=int, default=2, help="inference threads (default 2; more requests queue)")
    max_duration(sp)
    sp.add_argument("--ray", action="store_true",
                    help="search song embeddings held in index shards by Ray actors (top-k merged exactly)")
    sp.add_argument("--shards", type=int, default=None, metavar="N", help="--ray: index shards (default 2)")
    sp.add_argument("--address", metavar="ADDR", help="--ray: the cluster to join (default: running, else local)")
    sp.add_argument("--catalog", "-c", metavar="DIR", help="catalog folder (default: $SOUNDALIKE_CATALOG)")
    sp.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for torch and FAISS")
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("listens", help="listening history: import who played what, fit the recommender, simulate",
                        description="listens import FILE.csv: a header with user, track (catalog id or audio path, "
                                    "relative to the CSV), timestamp (ISO 8601 or unix seconds) and optionally "
                                    "plays. The file is checked first; rows with unknown tracks or bad values stop "
                                    "the import (nothing is imported) unless --skip-invalid. Repeated rows are "
                                    "skipped and counted. "
                                    "listens fit: fit the hybrid recommender now and show the blend it tuned on "
                                    "held-out listens (`recommend` also refits by itself when listens changed). "
                                    "listens simulate FILE.csv: write simulated listens over this catalog (tastes "
                                    "over labels and audio, popularity skew, new releases) to try things out.")
    sp.add_argument("action", choices=["import", "fit", "simulate"], help="what to do")
    sp.add_argument("file", metavar="FILE.csv", nargs="?", help="import: the history to read; simulate: where to write")
    sp.add_argument("--skip-invalid", action="store_true", help="import: import the valid rows, count the others")
    sp.add_argument("--users", type=int, default=200, help="simulate: how many users (default 200)")
    sp.add_argument("--seed", type=int, default=0, help="simulate: random seed (default 0)")
    sp.add_argument("--new-share", type=float, default=0.2,
                    help="simulate: share of tracks released in the second period (default 0.2)")
    sp.add_argument("--held-out", metavar="FILE2.csv",
                    help="simulate: write the second period's listens here instead of into FILE.csv")
    common(sp, catalog=True)
    sp.set_defaults(func=cmd_listens)

    sp = sub.add_parser("recommend", help="tracks for a user (from their listens) or like a seed track",
                        description="Rank catalog tracks for a user: by default a hybrid of ALS over everyone's "
                                    "listens and audio similarity to the user's taste (what nobody has played yet "
                                    "is ranked by its audio), blended with a weight tuned on held-out listens; or "
                                    "tracks that follow a seed track. Leaves out what they heard, caps tracks per "
                                    "album/artist/label with --max-per, and says why each is there. The "
                                    "recommender is refitted by itself when the listens changed.")
    who = sp.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a user from `soundalike listens import`")
    who.add_argument("--seed-track", type=int, metavar="ID", help="recommend from one catalog track instead")
    sp.add_argument("-k", type=int, default=20, help="how many (default 20)")
    sp.add_argument("--max-per", type=int, metavar="N", help="at most N tracks sharing one --per value")
    sp.add_argument("--per", choices=["album", "artist", "label"], default="album", help="what --max-per counts")
    sp.add_argument("--include-heard", action="store_true", help="keep tracks the user already played")
    sp.add_argument("--method", choices=["hybrid", "audio", "als"], default="hybrid",
                    help="hybrid (default), audio only, or ALS (listening history) only")
    common(sp, catalog=True)
    sp.set_defaults(func=cmd_recommend)

    sp = sub.add_parser("models", help="list registered encoders and shipped models")
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp.set_defaults(func=cmd_models)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:  # `soundalike` alone: what it can do
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SoundalikeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.DatabaseError as exc:  # a read the catalog's own translation did not see
        from soundalike.index.db import corrupt_error, is_corruption

        if not is_corruption(exc):
            raise
        print(f"error: {corrupt_error(getattr(args, 'catalog', None) or 'DIR', exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: everything finished so far is saved; run the same command again to continue",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # `soundalike similar ... | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
