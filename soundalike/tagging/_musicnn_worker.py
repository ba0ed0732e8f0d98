"""Run musicnn over audio files. Executed by the *teacher environment's* Python (numpy 1.26,
tensorflow-cpu, tf_keras, musicnn), never imported by soundalike itself.

    python _musicnn_worker.py JOB.json

JOB.json: {"files": [...], "keys": [...], "out": DIR, "model": "MTT_musicnn", "input_length": 3.0}.
Writes DIR/KEY.npy (float32 taggram, one row per input_length seconds) for each file, skipping
keys already written (a killed run resumes), DIR/worker.json (tags, versions), and prints one
JSON line per file.
"""

import json
import os
import sys


def main() -> None:
    with open(sys.argv[1]) as fh:
        job = json.load(fh)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import numpy as np
    from musicnn.extractor import extractor

    info = {"numpy": np.__version__, "model": job["model"], "input_length": job["input_length"]}
    try:
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
    except ImportError:
        pass
    try:
        from importlib.metadata import version

        info["musicnn"] = version("musicnn")
    except Exception:
        info["musicnn"] = "unknown"
    tags_written = os.path.exists(os.path.join(job["out"], "worker.json"))
    for path, key in zip(job["files"], job["keys"], strict=True):
        dest = os.path.join(job["out"], key + ".npy")
        if os.path.exists(dest):
            print(json.dumps({"file": path, "skipped": True}), flush=True)
            continue
        try:
            taggram, tags = extractor(path, model=job["model"], input_length=job["input_length"],
                                      extract_features=False)
        except Exception as exc:  # a bad file must not stop the run
            print(json.dumps({"file": path, "error": repr(exc)[:300]}), flush=True)
            continue
        tmp = os.path.join(job["out"], key + ".tmp.npy")
        np.save(tmp, np.asarray(taggram, dtype=np.float32))
        os.replace(tmp, dest)
        if not tags_written:
            with open(os.path.join(job["out"], "worker.json"), "w") as fh:
                json.dump({**info, "tags": list(tags)}, fh, indent=2)
            tags_written = True
        print(json.dumps({"file": path, "chunks": int(len(taggram))}), flush=True)


if __name__ == "__main__":
    main()
