"""Training: how a decoder learns from the datasets.

    runtime.py     device, DDP process group, seeds and RNG state, mixed precision
    cache.py       the frozen encoders' features, computed once per image and prompt
    losses.py      segmentation and presence losses
    schedule.py    learning-rate schedules
    ema.py         weight averaging
    runs.py        RunDir: a run folder's files (checkpoints, config.json, metrics.jsonl) and the best-epoch rule
    train.py       train(): setup, train_step and the epoch loop, validation, checkpoints and resume
"""
