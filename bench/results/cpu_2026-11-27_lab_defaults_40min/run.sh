# The lab's defaults (model=seed, the default set), 40 minutes on 2 CPU cores, then evaluate on the best checkpoint.
cd /tmp/cur
date
PY=.venv/bin/python
rm -rf outputs/lab_defaults_40min
$PY -m cvae_video.train 'trainer.max_time="00:00:40:00"' trainer.enable_progress_bar=false "~callbacks.progress_bar" \
    hydra.run.dir=outputs/lab_defaults_40min
date
best=$(ls outputs/lab_defaults_40min/checkpoints/best-*.ckpt | tail -1)
$PY -m cvae_video.evaluate ckpt_path=$best hydra.run.dir=outputs/lab_defaults_40min/eval
date
