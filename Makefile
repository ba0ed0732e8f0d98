# soundalike: `make demo` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= demo
# The demo corpus: 10 music21 collections x 6 works x 2 instrumentations (~40 min of audio).
DEMO_WORKS ?= 6
PORT ?= 8000

.PHONY: demo test test-fast install install-test lint typecheck bench clean help

help:
	@echo "make demo   - install, render the demo corpus, index it, query it"
	@echo "make test   - install the test extras and run the whole suite"
	@echo "make test-fast - the fast tier (tests not marked slow), in under 2 minutes"
	@echo "make lint   - ruff + mypy"
	@echo "make bench  - benchmarks/ingest.py (x-realtime vs a librosa baseline)"
	@echo "              benchmarks/identify.py needs data/debian-eval and fpcalc: see the README"
	@echo "              benchmarks/events.py and benchmarks/transcribe.py need fluid-soundfont-gm and their peers: see the README"
	@echo "              benchmarks/restore.py needs data/debian-eval and noisereduce (the bench extra): see the README"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch first, pinned: the local CPU wheel (a plain `torch` would pull GBs of CUDA).
# tinysoundfont with --no-deps: it declares pyaudio, needed only for live playback.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q --no-deps tinysoundfont
	$(BIN)/pip install -q -e '.[render,serve]'
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[render,test]'
	@touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	@test -f $(DEMO)/corpus/manifest.jsonl || $(BIN)/soundalike demo-corpus $(DEMO)/corpus --works-per-collection $(DEMO_WORKS) --instrumentations 2
	$(BIN)/soundalike index $(DEMO)/corpus/audio --catalog $(DEMO)/catalog --manifest $(DEMO)/corpus/manifest.jsonl --hash-model hash_cnn-music --tag-heads default --notes
	$(BIN)/soundalike info --catalog $(DEMO)/catalog
	$(BIN)/soundalike similar $(DEMO)/corpus/query.mp3 --catalog $(DEMO)/catalog -k 10
	$(BIN)/soundalike similar $(DEMO)/corpus/query.mp3 --catalog $(DEMO)/catalog -k 5 --hash
	$(BIN)/soundalike tag $(DEMO)/corpus/query.mp3 --top 8
	$(BIN)/soundalike events $(DEMO)/corpus/query.mp3 --limit 8
	$(BIN)/soundalike transcribe $(DEMO)/corpus/query.mp3 -o $(DEMO)/query.mid --limit 8
	$(BIN)/soundalike restore $(DEMO)/corpus/query.mp3 -o $(DEMO)/query-restored.mp3
	$(BIN)/soundalike similar $(DEMO)/corpus/query.mp3 --catalog $(DEMO)/catalog -k 5 --by notes
	$(BIN)/soundalike similar $(DEMO)/corpus/query.mp3 --catalog $(DEMO)/catalog -k 5 --where "tag:piano>0.2"
	$(BIN)/soundalike identify $(DEMO)/corpus/query.mp3 --catalog $(DEMO)/catalog --duration 8
	$(BIN)/soundalike listens simulate $(DEMO)/listens.csv --catalog $(DEMO)/catalog --users 200
	$(BIN)/soundalike listens import $(DEMO)/listens.csv --catalog $(DEMO)/catalog
	$(BIN)/soundalike listens fit --catalog $(DEMO)/catalog
	$(BIN)/soundalike recommend --user user001 -k 5 --max-per 2 --per label --catalog $(DEMO)/catalog
	@echo "starting the web app on the demo catalog: open http://127.0.0.1:$(PORT)/ (Ctrl-C stops it)"
	$(BIN)/soundalike serve --catalog $(DEMO)/catalog --port $(PORT)

# Debian packages some tests use: the held-out soundfont for instrument tags (fluid-soundfont-gm) and
# Chromium + its driver for the browser test of the web app, and tcmalloc (what `soundalike train` preloads). Installed when run as root with apt-get
# (CI); elsewhere those tests skip and say so. Playwright drives /usr/bin/chromium: never `playwright install`.
FLUID_SF2 := /usr/share/sounds/sf2/FluidR3_GM.sf2
CHROMIUM  := /usr/bin/chromium

test: $(VENV)/.installed-test
	@{ test -f $(FLUID_SF2) && test -x $(CHROMIUM) && command -v ffmpeg >/dev/null && ls /usr/lib/*/libtcmalloc_minimal.so.4 >/dev/null 2>&1; } || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fluid-soundfont-gm chromium \
	   chromium-driver libtcmalloc-minimal4 ffmpeg) >/dev/null; } || \
	  echo "note: fluid-soundfont-gm / chromium / libtcmalloc-minimal4 / ffmpeg are not installed (needs root and apt-get); their tests will skip"
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -ra

# The fast tier: every test not marked slow (slow: over ~5 s, rendering, training, Ray, the browser).
test-fast: $(VENV)/.installed-test
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -ra -m "not slow"

lint: $(VENV)/.installed-test
	$(BIN)/ruff check soundalike tests benchmarks scripts examples beetsplug
	$(BIN)/mypy

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(DEMO) .pytest_cache .mypy_cache .ruff_cache
