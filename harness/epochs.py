"""What the training loop tells about its epochs: the type of its progress callback.

harness.train calls `progress(EpochProgress(...))` after each epoch; the session's progress display
(harness.progress) and its log lines read it. It lives below both, so the training loop imports
nothing of the session above it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EpochProgress:
    """One finished epoch of a run, as harness.train reports it. Its text is the log line."""

    label: str
    epoch: int
    epochs: int
    loss: float
    accuracy: float | None = None  # None: the epoch was not evaluated
    evaluated_on: str = "test"
    images_per_s: float | None = None  # the epoch's training images per second

    def __str__(self) -> str:
        acc = f", {self.evaluated_on} acc {self.accuracy:.4f}" if self.accuracy is not None else ""
        speed = f", {self.images_per_s:.0f} img/s" if self.images_per_s else ""
        return f"{self.label}: epoch {self.epoch}/{self.epochs}, loss {self.loss:.4f}{acc}{speed}"
