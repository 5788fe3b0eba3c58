"""The designs of the conditional VAE (plain torch modules: no Lightning, no Hydra).

sequence.py      the time loop every design shares (`SequenceCVAE.unroll`: training and inference) and the loss
template.py      the lab's networks, as the course's template (`model=template`)
compositing.py   the compositing U-Net designed for the CPU (`model=small`)
acceleration.py  rollouts replayed as CUDA graphs or run through torch.compile
"""
