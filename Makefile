# make demo: install, make the synthetic data, train the small model on CPU, validate
# make test: install, run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q torch==2.13.0   # the local CPU build; an unpinned torch pulls GBs of CUDA
	$(VENV)/bin/pip install -q -e ".[test]"
	touch $@

install: $(STAMP)

demo: install
	rm -rf outputs/demo
	$(PY) -m cvae_video.train experiment=demo hydra.run.dir=outputs/demo/train

test: install
	$(PY) -m pytest

clean:
	rm -rf outputs/demo outputs/train outputs/multiruns
