"""A deliberately slow per-item feature, so a test can kill an extraction half-way.

Imported by configs in subprocesses (``import slowfeatures``; tests put this folder on
PYTHONPATH), never by the test process itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gin
import numpy as np

from ginpipe.tasks.data.audio_features import LogMel


@dataclass(frozen=True)
class SlowLogMel:
    """A small log-mel spectrogram that takes at least ``delay`` seconds per item."""

    delay: float = 0.1
    sample_rate: int = 8000

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        time.sleep(self.delay)
        return LogMel(self.sample_rate, n_fft=256, hop_length=128, n_mels=16)(audio)


@gin.configurable
def slow_log_mel(delay: float = 0.1, sample_rate: int = 8000) -> SlowLogMel:
    return SlowLogMel(delay, sample_rate)
