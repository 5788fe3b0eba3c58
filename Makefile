# make demo: install, make the synthetic data, train the small model on CPU, validate
# make test: install, lint and format-check with ruff, run the test suite
# make bench: install, time training steps and rollouts against the lab's reference loop (outputs/bench/bench.json)
# make quality: install, train experiment=quality (~38 min on 2 CPU cores), evaluate and plot into outputs/quality/
# make curves: after make quality, train the template under the same recipe (~50 min) and draw both learning
#              curves (validation PSNR against minutes of training) into outputs/curves/
# make sweep: the lab's comparisons (experiment=lab_comparison, 14 runs, 2 at a time: ~40 min on 2 CPU cores),
#             then make report: outputs/sweep/report/REPORT.md and a figure per comparison
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BASE := $(VENV)/.installed-base
FULL := $(VENV)/.installed

.PHONY: install install-base demo quality curves sweep report test bench clean

# The package alone: what training, evaluation and the demo need.
$(BASE): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q torch==2.13.0   # the local CPU build; an unpinned torch pulls GBs of CUDA
	$(VENV)/bin/pip install -q -e .
	touch $@

# Plus pytest and Hydra's launchers and sweeper (the tests and the sweeps): about a minute more to install.
$(FULL): $(BASE)
	$(VENV)/bin/pip install -q -e ".[test]"
	touch $@

install-base: $(BASE)
install: $(FULL)

demo: install-base
	rm -rf outputs/demo
	$(PY) -m cvae_video.train experiment=demo hydra.run.dir=outputs/demo/train
	$(PY) -m cvae_video.predict ckpt_path=outputs/demo/train/checkpoints/last.ckpt hydra.run.dir=outputs/demo/predict
	$(PY) -m cvae_video.plots outputs/demo/train --out outputs/demo/plots
	@echo
	$(PY) -m cvae_video.evaluate ckpt_path=outputs/demo/train/checkpoints/last.ckpt hydra.run.dir=outputs/demo/eval
	@echo
	@echo "figures:    outputs/demo/eval/psnr_per_frame.png  outputs/demo/plots/{loss,schedules,val_psnr,val_psnr_vs_minutes,val_psnr_per_frame}.png"
	@echo "GIFs:       outputs/demo/eval/val_rollout.gif  outputs/demo/predict/pred_seq*.gif"
	@echo "submission: outputs/demo/predict/submission.csv  (test scores: outputs/demo/predict/test_scores.json)"

quality: install-base
	rm -rf outputs/quality
	$(PY) -m cvae_video.train experiment=quality hydra.run.dir=outputs/quality/train
	$(PY) -m cvae_video.plots outputs/quality/train --out outputs/quality/plots
	@echo
	$(PY) -m cvae_video.evaluate ckpt_path=outputs/quality/train/checkpoints/last.ckpt hydra.run.dir=outputs/quality
	@echo
	$(PY) -m cvae_video.predict ckpt_path=outputs/quality/train/checkpoints/last.ckpt hydra.run.dir=outputs/quality/predict
	@echo
	@echo "figures: outputs/quality/psnr_per_frame.png  outputs/quality/plots/{val_psnr,val_psnr_vs_minutes,loss}.png"
	@echo "test:    outputs/quality/predict/test_scores.json  outputs/quality/predict/pred_seq*.gif"

curves: install-base
	@test -d outputs/quality/train || { echo "error: outputs/quality/train missing: run make quality first"; exit 1; }
	rm -rf outputs/curves
	$(PY) -m cvae_video.train experiment=quality_template hydra.run.dir=outputs/curves/template
	$(PY) -m cvae_video.plots outputs/curves/template outputs/quality/train --labels "template (model=template)" \
		"small (model=small)" --out outputs/curves
	@echo "figure: outputs/curves/val_psnr_vs_minutes.png"

sweep: install
	rm -rf outputs/sweep
	$(PY) -m cvae_video.train -m experiment=lab_comparison hydra/launcher=joblib hydra.launcher.n_jobs=2 \
		hydra.sweep.dir=outputs/sweep
	$(MAKE) report

report: install-base
	$(PY) -m cvae_video.report outputs/sweep

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

bench: install-base
	$(PY) -m bench.steps

clean:
	rm -rf outputs/demo outputs/quality outputs/curves outputs/sweep outputs/train outputs/multiruns
