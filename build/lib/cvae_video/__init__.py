"""cvae-video: pose-conditioned video prediction with a conditional VAE (Lightning + Hydra)."""
