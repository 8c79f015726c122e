"""Synthetic animal calls and background noise, as float64 signals in [-1, 1].

Pure functions of (rng, sample rate, duration): no I/O, so the dataset writer
decides determinism and layout. Each class differs in *how its energy moves
over time and frequency*, which is what 13 MFCCs can see:

  cat   a harmonic glide (meow): one pitch in 400-1200 Hz with vibrato
  dog   1-4 short noisy barks shaped by formants in 300-1000 Hz
  bird  a train of 30-100 ms chirps sweeping within 2-8 kHz

The background is the same kind of coloured noise for every class, so the
class can only be told from the call, never from the noise.
"""
from __future__ import annotations

import numpy as np

Rng = np.random.Generator


def coloured_noise(rng: Rng, n: int, sr: int, alpha_range: tuple[float, float] = (0.5, 1.5)) -> np.ndarray:
    """Unit-RMS noise with a 1/f^alpha spectrum: alpha near 0 is hiss, near 2 rumble (rooms, wind)."""
    alpha = rng.uniform(*alpha_range)
    # Shape a power-of-two block and cut it: FFTs of arbitrary (prime-factored)
    # clip lengths made generating the dataset 10x slower.
    size = _pow2_at_least(n)
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.fft.rfftfreq(size, d=1.0 / sr)
    # Flatten below 50 Hz so the noise is not dominated by an inaudible DC drift.
    spectrum /= np.maximum(freqs, 50.0) ** (alpha / 2.0)
    noise = np.fft.irfft(spectrum, size)[:n]
    return noise / (np.std(noise) + 1e-12)


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def _envelope(n: int, sr: int, attack_s: float, release_s: float) -> np.ndarray:
    """Linear attack, flat top, linear release; avoids clicks that would look like barks."""
    env = np.ones(n)
    a = min(n // 2, max(1, int(attack_s * sr)))
    r = min(n - a, max(1, int(release_s * sr)))
    env[:a] = np.linspace(0.0, 1.0, a)
    env[n - r :] = np.linspace(1.0, 0.0, r)
    return env


def cat_call(rng: Rng, sr: int, n: int) -> np.ndarray:
    """A meow: the pitch glides between two points of 400-1200 Hz, with 4-8 Hz vibrato."""
    t = np.arange(n) / sr
    start, end = rng.uniform(400.0, 1200.0, size=2)
    # A rise then fall (or the reverse) through a mid point, like a real meow's arch.
    peak = rng.uniform(min(start, end), 1200.0)
    shape = np.sin(np.pi * t / t[-1]) if n > 1 else np.zeros(n)
    f0 = start + (end - start) * t / max(t[-1], 1e-9) + (peak - max(start, end)) * shape
    f0 = np.clip(f0, 400.0, 1200.0)
    f0 *= 1.0 + rng.uniform(0.01, 0.04) * np.sin(2 * np.pi * rng.uniform(4.0, 8.0) * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    rolloff = rng.uniform(0.4, 0.8)
    out = np.zeros(n)
    for k in range(1, 7):
        # Harmonics above Nyquist would alias back as spurious low tones.
        if 1200.0 * k < sr / 2:
            out += (rolloff ** (k - 1)) * np.sin(k * phase)
    shaped: np.ndarray = out * _envelope(n, sr, 0.04, 0.08)
    return shaped


def _formant_filter(signal: np.ndarray, sr: int, formants: np.ndarray, width_hz: float) -> np.ndarray:
    """Shape a broadband signal with Gaussian resonances at the formant frequencies."""
    size = _pow2_at_least(len(signal))
    spectrum = np.fft.rfft(signal, size)
    freqs = np.fft.rfftfreq(size, d=1.0 / sr)
    gain = np.zeros_like(freqs)
    for f in formants:
        gain += np.exp(-0.5 * ((freqs - f) / width_hz) ** 2)
    return np.fft.irfft(spectrum * gain, size)[: len(signal)]


def dog_call(rng: Rng, sr: int, n: int) -> np.ndarray:
    """1-4 barks: noise bursts of 80-200 ms through 2-3 formants in 300-1000 Hz, with gaps."""
    out = np.zeros(n)
    count = int(rng.integers(1, 5))
    slot = n // count
    for i in range(count):
        length = min(slot, int(rng.uniform(0.08, 0.2) * sr))
        offset = i * slot + int(rng.uniform(0.0, max(0, slot - length)))
        formants = np.sort(rng.uniform(300.0, 1000.0, size=int(rng.integers(2, 4))))
        burst = _formant_filter(rng.standard_normal(length), sr, formants, rng.uniform(60.0, 150.0))
        burst /= np.max(np.abs(burst)) + 1e-12
        # Barks start hard and die away.
        burst *= _envelope(length, sr, 0.005, 0.5 * length / sr)
        out[offset : offset + length] += burst * rng.uniform(0.7, 1.0)
    return out


def bird_call(rng: Rng, sr: int, n: int) -> np.ndarray:
    """A trill: chirps of 30-100 ms sweeping up or down within 2-8 kHz (capped below Nyquist)."""
    out = np.zeros(n)
    top = min(8000.0, 0.45 * sr)
    pos = 0
    while pos < n:
        length = int(rng.uniform(0.03, 0.1) * sr)
        if pos + length > n:
            break
        lo, hi = np.sort(rng.uniform(2000.0, top, size=2))
        sweep = np.linspace(lo, hi, length) if rng.random() < 0.6 else np.linspace(hi, lo, length)
        chirp = np.sin(2 * np.pi * np.cumsum(sweep) / sr) * np.hanning(length)
        out[pos : pos + length] += chirp * rng.uniform(0.6, 1.0)
        pos += length + int(rng.uniform(0.01, 0.06) * sr)
    return out


CALLS = {"cat": cat_call, "dog": dog_call, "bird": bird_call}


def mix_at_snr(call: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Scale `call` so that, where it sounds, its power is `snr_db` above the noise's."""
    active = np.abs(call) > 1e-6
    call_power = np.mean(call[active] ** 2) if active.any() else 0.0
    noise_power = np.mean(noise**2)
    if call_power == 0.0:
        return noise.copy()
    scale = np.sqrt(noise_power * 10 ** (snr_db / 10.0) / call_power)
    mixed: np.ndarray = noise + scale * call
    return mixed
