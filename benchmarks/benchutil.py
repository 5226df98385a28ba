"""Shared by the benchmarks: where they run, timing, and peak memory measured the same way everywhere.

Peak memory is always "over what was allocated when the measurement started" (the loaded models
and inputs), in MiB:

* CUDA: the caching allocator's peak of allocated memory (``torch.cuda.max_memory_allocated``
  after ``reset_peak_memory_stats``), exact within one process;
* CPU: the process's peak resident set. When the measured block raises the process's lifetime
  peak (``ru_maxrss``) -- always the case for the first measurement of a fresh process, which is
  how the command-line benchmarks run every measurement -- that peak is exact. Otherwise (several
  measurements in one process, as ``gpu_all.py --device cpu`` does) it is the highest resident
  set sampled every few milliseconds, after handing freed heap back to the OS (``malloc_trim``),
  which can miss a short spike.
"""
from __future__ import annotations

import ctypes
import os
import resource
import threading
import math
import time

MB = 2**20


def is_cuda(device) -> bool:
    return str(device).startswith("cuda")


def sync(device):
    if is_cuda(device):
        import torch

        torch.cuda.synchronize()


def where(device) -> str:
    """The device in words, for the header line of a benchmark."""
    import torch

    if is_cuda(device):
        return f"{torch.cuda.get_device_name(torch.device(device))}"
    return f"CPU, {torch.get_num_threads()} threads"


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _trim():
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """``with PeakMemory(device) as peak: ...`` then ``peak.mb``: see the module docstring."""

    def __init__(self, device, interval_s: float = 0.002):
        self.device, self.interval_s = device, interval_s
        self.mb = float("nan")
        self.exact = True

    def __enter__(self):
        if is_cuda(self.device):
            import torch

            torch.cuda.synchronize()
            self.base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            return self
        _trim()
        self.base_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        self.base = _rss_bytes()
        if self.base is None:  # no /proc: ru_maxrss only
            self.base = self.base_maxrss
        self.sampled = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(self.interval_s):
            rss = _rss_bytes()
            if rss is not None and rss > self.sampled:
                self.sampled = rss

    def __exit__(self, *exc):
        if is_cuda(self.device):
            import torch

            torch.cuda.synchronize()
            self.mb = (torch.cuda.max_memory_allocated() - self.base) / MB
            return False
        self._stop.set()
        self._thread.join()
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        if maxrss > self.base_maxrss:  # this block set the process's peak: exact
            peak = maxrss
        else:
            peak, self.exact = self.sampled, False
        self.mb = max(0, peak - self.base) / MB
        return False


def timed(fn, repeats: int, device, warmup: int = 1) -> dict:
    """Best of ``repeats`` timed calls of ``fn`` after ``warmup`` untimed ones, and the peak memory
    over all of them. ``first`` is what the first call returned (for checks across implementations)."""
    with PeakMemory(device) as peak:
        first = None
        for i in range(warmup):
            out = fn()
            first = out if i == 0 else first
        times = []
        for _ in range(repeats):
            sync(device)
            t = time.perf_counter()
            out = fn()
            sync(device)
            times.append(time.perf_counter() - t)
        if first is None:
            first = out
    return {"time": min(times), "times": times, "peak_mb": peak.mb, "first": first}


def run_steps_timed(step, steps: int, device) -> tuple[float, float, object]:
    """(wall seconds of ``steps`` calls of ``step``, their peak memory in MB, the last call's result):
    a whole run, where ``timed`` takes the best of single calls."""
    with PeakMemory(device) as peak:
        sync(device)
        t = time.perf_counter()
        last = None
        for _ in range(steps):
            last = step()
        sync(device)
        elapsed = time.perf_counter() - t
    return elapsed, peak.mb, last


# ---- table cells (a missing or failed result is a dash) ----


def time_of(result) -> float:
    return float("nan") if result is None or "error" in result else result["time"]


def fmt_seconds(x) -> str:
    if x is None or math.isnan(x):
        return "—"
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"


def fmt_ratio(a, b) -> str:
    return "—" if math.isnan(a) or math.isnan(b) or not b else f"{a / b:.2f}"


def fmt_peak(result) -> str:
    return "—" if result is None or "error" in result else f"{result['peak_mb']:.0f}"


def check_value(x) -> float:
    """A number that summarises an output, for 'do both implementations agree' checks."""
    import torch

    if torch.is_tensor(x):
        return float(x.detach().double().abs().mean())
    return float(x)
