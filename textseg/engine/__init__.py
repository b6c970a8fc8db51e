"""Training: how a decoder learns from the datasets.

    runtime.py     device, DDP process group, seeds and RNG state, mixed precision
    cache.py       the frozen encoders' features, computed once per image and prompt
    losses.py      segmentation and presence losses
    schedule.py    learning-rate schedules
    ema.py         weight averaging
    runs.py        the run folder's metrics.jsonl (one reader and writer)
    train.py       train(): setup, the epoch loop, checkpoints and resume (`textseg train`)
"""
