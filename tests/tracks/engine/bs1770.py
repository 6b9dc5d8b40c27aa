"""A plain ITU-R BS.1770-4 meter written from the standard: the test oracle for the engine's meters.

Deliberately naive and independent of ``tracks.engine.master``: the whole signal is filtered at once
in float64 with the K-weighting coefficients printed in the standard (so 48 kHz only), every 400 ms
block is measured directly, and the true peak comes from scipy's own polyphase resampler.
"""

import math

import numpy as np
from scipy import signal

RATE = 48000
_SHELF = [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241, 0.73248077421585]
_HIGHPASS = [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621]


def reference_loudness(samples: np.ndarray) -> float:
    """Integrated loudness in LUFS of 48 kHz ``samples`` (n, channels)."""
    weighted = signal.sosfilt(np.array([_SHELF, _HIGHPASS]), np.asarray(samples, dtype=np.float64), axis=0)
    block, step = round(0.4 * RATE), round(0.1 * RATE)
    powers = np.array(
        [
            float((weighted[start : start + block] ** 2).mean(axis=0).sum())
            for start in range(0, weighted.shape[0] - block + 1, step)
        ]
    )
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10 * np.log10(powers)
    above_absolute = powers[loudness > -70.0]
    relative_gate = -0.691 + 10 * math.log10(above_absolute.mean()) - 10.0
    gated = powers[(loudness > -70.0) & (loudness > relative_gate)]
    return -0.691 + 10 * math.log10(gated.mean())


def reference_true_peak(samples: np.ndarray) -> float:
    """Maximum of the 4x oversampled signal in dBTP."""
    upsampled = signal.resample_poly(np.asarray(samples, dtype=np.float64), 4, 1, axis=0)
    return 20 * math.log10(float(np.abs(upsampled).max()))
