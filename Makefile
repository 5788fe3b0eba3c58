# make demo: install, make the synthetic data, train the small model on CPU, validate
# make test: install, run the test suite
# make bench: install, time training steps and rollouts against the lab's seed loop (outputs/bench/bench.json)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean

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
	$(PY) -m cvae_video.predict ckpt_path=outputs/demo/train/checkpoints/last.ckpt hydra.run.dir=outputs/demo/predict
	$(PY) -m cvae_video.plots outputs/demo/train --out outputs/demo/plots
	@echo
	$(PY) -m cvae_video.evaluate ckpt_path=outputs/demo/train/checkpoints/last.ckpt hydra.run.dir=outputs/demo/eval
	@echo
	@echo "figures:    outputs/demo/eval/psnr_per_frame.png  outputs/demo/plots/{loss,schedules,val_psnr,val_psnr_per_frame}.png"
	@echo "GIFs:       outputs/demo/eval/val_rollout.gif  outputs/demo/predict/pred_seq*.gif"
	@echo "submission: outputs/demo/predict/submission.csv  (test scores: outputs/demo/predict/test_scores.json)"

test: install
	$(PY) -m pytest

bench: install
	$(PY) -m cvae_video.bench

clean:
	rm -rf outputs/demo outputs/train outputs/multiruns
