"""The scoring conventions every score follows (plain Python: the data generator's workers read them without torch)."""

PSNR_CEILING = 100.0  # dB: identical frames score this instead of infinity (JSON files stay finite)
KAGGLE_FRAMES = slice(1, 601)  # the course's scorer: frames 1-600 of each sequence (not 0, not 601-629)
