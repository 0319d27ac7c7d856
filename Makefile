# Two commands: `make run` (the main job on embedded defaults) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test bench lint clean

# torch is installed first and pinned: a range lets pip pick a multi-GB CUDA build, while this
# release is a CPU build on this project's machines (from PyPI elsewhere). Every optional extra
# is installed so that every test runs; none of them downloads a model.
TORCH ?= torch==2.13.0
EXTRAS := dev,nudenet,onnx,transformers,provenance,diffusers,postgres

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check '$(TORCH)'
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/gardien prompt demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/bench_prompts.py
	$(PY) bench/bench_hashing.py
	$(PY) bench/bench_index.py
	$(PY) bench/bench_watermark.py
	$(PY) bench/bench_image.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench tools
	$(VENV)/bin/ruff format --check src tests bench tools
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
