"""The few signal-processing routines the engine needs, in NumPy alone.

SciPy's ``signal`` and ``ndimage`` would do, but importing either pulls in ``scipy.special`` and
``scipy.stats`` and costs a worker process ~75 MB of memory (measured: RSS 25 -> 101 MB), a third of a
render worker's budget, for five functions. These match SciPy's results to float rounding (the tests
compare them).
"""

import threading
from functools import lru_cache

import numpy as np
from threadpoolctl import threadpool_limits

_BLOCK = 128  # samples per block of the block-recursive IIR filter
_blas_lock = threading.Lock()
_blas_limited = False


def _one_blas_thread() -> None:
    """Make BLAS (NumPy's matrix products) single-threaded in this process, once.

    The engine runs its filters on several threads of its own (one per core and stretch of song);
    BLAS threads under each of them would oversubscribe the cores: measured on 2 cores, two
    loudness passes at once took 0.60 s with BLAS's own threads and 0.33 s without.
    """
    global _blas_limited
    with _blas_lock:
        if not _blas_limited:
            threadpool_limits(limits=1, user_api="blas")
            _blas_limited = True


@lru_cache(maxsize=16)
def _block_system(sos_key: tuple[tuple[float, ...], ...]) -> dict[str, np.ndarray]:
    """For a cascade of biquads (transposed direct form II, as ``scipy.signal.sosfilt``), the
    matrices that filter a block of ``_BLOCK`` (L) samples at once, S being the cascade's states:

    - ``block`` (L + S, L): a block's row (its samples, then the state it starts in) times this is
      its output: its samples through the impulse response plus the response to that state;
    - ``to_state`` (S, L): what its samples leave in the state at its end (column n: A^(L-1-n) B);
    - ``within`` (L + 1, S, S): the one-sample transition A raised to 0..L (A^L: one block).
    """
    sections = len(sos_key)
    size = 2 * sections
    # One state-space system for the whole cascade: a section's input is the previous one's output.
    a = np.zeros((size, size))
    b = np.zeros(size)
    c = np.zeros(size)
    d = 1.0
    for index, (b0, b1, b2, a0, a1, a2) in enumerate(sos_key):
        b0, b1, b2, a1, a2 = b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0
        into = np.array([b1 - a1 * b0, b2 - a2 * b0])
        at = slice(2 * index, 2 * index + 2)
        # This section's input is the cascade so far, c @ state + d * x; its own states follow it.
        a[at, :] += np.outer(into, c)
        a[at, at] = np.array([[-a1, 1.0], [-a2, 0.0]])
        b[at] = into * d
        c = b0 * c
        c[2 * index] += 1.0
        d = b0 * d
    length = _BLOCK
    within = [np.eye(size)]
    for _ in range(length):
        within.append(a @ within[-1])
    impulse = np.array([d] + [c @ within[n] @ b for n in range(length - 1)])
    zero_state = np.zeros((length, length))
    for n in range(length):
        zero_state[n, : n + 1] = impulse[n::-1]
    from_state = np.array([c @ within[n] for n in range(length)])
    to_state = np.array([within[length - 1 - n] @ b for n in range(length)]).T
    return {
        # a block's row (samples, starting state) times this is the block's output
        "block": np.vstack([zero_state.T, from_state.T]),
        "to_state": to_state,
        "within": np.array(within),
    }


def sosfilt(
    sos: np.ndarray, samples: np.ndarray, zi: np.ndarray, *, channels_first: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.sosfilt(sos, samples, axis=0, zi=zi)`` for ``samples`` shaped (frames, channels);
    with ``channels_first`` the output is shaped (channels, frames), which saves a copy.

    ``zi`` is shaped (sections, 2, channels), as SciPy's; returns the filtered samples (in the
    samples' float type) and the final state (in ``zi``'s). Blocks of samples are filtered with
    matrix products: a block's output is its own samples through the impulse response plus the
    response to the state it starts in; no loop runs over the samples.
    """
    _one_blas_thread()
    key = tuple(tuple(float(value) for value in section) for section in np.asarray(sos))
    system = _block_system(key)
    to_state = system["to_state"]
    size = to_state.shape[0]
    frames, channels = samples.shape
    start = np.asarray(zi, dtype=np.float64).transpose(2, 0, 1).reshape(channels, size)
    if frames == 0:
        return samples.copy(), np.array(zi, copy=True)
    blocks = -(-frames // _BLOCK)
    # The heavy product runs in the samples' precision (float32 for audio), the states in float64.
    dtype = np.float32 if samples.dtype == np.float32 else np.float64
    # One row per block: its L samples, then the S values of the state it starts in.
    rows = np.zeros((channels, blocks, _BLOCK + size), dtype=dtype)
    whole = frames // _BLOCK
    rows[:, :whole, :_BLOCK] = samples[: whole * _BLOCK].T.reshape(channels, whole, _BLOCK)
    rows[:, whole:, : frames - whole * _BLOCK] = samples[whole * _BLOCK :].T[:, np.newaxis, :]
    x = rows[:, :, :_BLOCK]
    # Block k starts in the state S_k = A^L S_(k-1) + (what block k-1 left): a linear recurrence,
    # solved for every block at once by doubling (S_k gathers the blocks 1, 2, 4, ... before it).
    left = x @ to_state.T.astype(dtype)
    power = system["within"][_BLOCK]
    transitions = []
    distance = 1
    while distance < blocks:
        transitions.append((distance, power.T.copy()))
        power = power @ power
        distance *= 2
    starts = np.empty((channels, blocks, size))
    for channel in range(channels):
        state = starts[channel]
        state[0] = start[channel]
        state[1:] = left[channel, :-1]
        for distance, step in transitions:
            state[distance:] += state[:-distance] @ step
    rows[:, :, _BLOCK:] = starts
    output = rows.reshape(-1, _BLOCK + size) @ system["block"].astype(dtype)
    filtered = output.reshape(channels, blocks * _BLOCK)[:, :frames]
    # The state after the last real sample: the last block from its start, over its real samples.
    used = frames - (blocks - 1) * _BLOCK
    last = x[:, blocks - 1, :used].astype(np.float64)
    final = starts[:, blocks - 1, :] @ system["within"][used].T + last @ to_state[:, _BLOCK - used :].T
    final_zi = final.reshape(channels, -1, 2).transpose(1, 2, 0)
    filtered = filtered if channels_first else np.ascontiguousarray(filtered.T)
    return filtered.astype(samples.dtype, copy=False), final_zi.astype(np.asarray(zi).dtype, copy=False)


def firwin_kaiser(taps: int, cutoff: float, beta: float) -> np.ndarray:
    """A low-pass FIR of ``taps`` taps, ``cutoff`` relative to Nyquist, Kaiser window ``beta``, unity
    gain at DC: ``scipy.signal.firwin(taps, cutoff, window=("kaiser", beta))``."""
    middle = (taps - 1) / 2
    n = np.arange(taps) - middle
    response = cutoff * np.sinc(cutoff * n) * np.kaiser(taps, beta)
    return response / response.sum()


def upsample(taps: np.ndarray, samples: np.ndarray, factor: int) -> np.ndarray:
    """``scipy.signal.upfirdn(taps, samples, up=factor)`` for a 1-D signal."""
    stuffed = np.zeros(samples.shape[0] * factor, dtype=np.float64)
    stuffed[::factor] = samples
    full = np.convolve(stuffed, taps)
    # upfirdn keeps (len(samples) - 1) * factor + len(taps) samples
    return full[: (samples.shape[0] - 1) * factor + taps.shape[0]]


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """``samples`` (1-D) at ``rate_out``: for a whole multiple of ``rate_in`` (espeak-ng's 22050 Hz to
    44100 Hz) as ``scipy.signal.resample_poly(samples, factor, 1)`` does it, a Kaiser (beta 5)
    low-pass of 20 * factor + 1 taps with its delay removed; otherwise linearly interpolated."""
    if rate_out % rate_in:
        times = np.arange(round(samples.shape[0] * rate_out / rate_in)) * (rate_in / rate_out)
        return np.interp(times, np.arange(samples.shape[0]), samples)
    factor = rate_out // rate_in
    half = 10 * factor
    taps = firwin_kaiser(2 * half + 1, 1.0 / factor, 5.0) * factor
    return upsample(taps, samples, factor)[half : half + samples.shape[0] * factor]


def maximum_filter1d(values: np.ndarray, size: int) -> np.ndarray:
    """``scipy.ndimage.maximum_filter1d(values, size, mode="nearest")`` for 1-D ``values``, odd ``size``."""
    half = size // 2
    padded = np.pad(values, half, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, size).max(axis=1)


def uniform_filter1d(values: np.ndarray, size: int) -> np.ndarray:
    """``scipy.ndimage.uniform_filter1d(values, size, mode="nearest")`` for 1-D ``values``, odd ``size``."""
    half = size // 2
    padded = np.pad(np.asarray(values, dtype=np.float64), half, mode="edge")
    sums = np.cumsum(np.concatenate(([0.0], padded)))
    return ((sums[size:] - sums[:-size]) / size).astype(values.dtype, copy=False)
