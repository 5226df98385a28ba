"""Edit strength per frame from keyframes: ``(frame, strength)`` pairs, linearly interpolated
between keyframes and held before the first and after the last (as a video editor's keyframed
value). Frames count from 0, over the whole clip (frames without a face included)."""
from __future__ import annotations

import math
import re

import numpy as np

_PAIR = re.compile(r"^\s*(-?\d+)\s*(?:[:=]|\s)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def parse_keyframes(text: str) -> list[tuple[int, float]]:
    """``"0: 0, 8: 3, 15: 3"``: pairs separated by commas, semicolons or new lines, each
    ``frame: strength`` (or ``frame=strength``, ``frame strength``)
    -> sorted pairs. An empty text is no keyframes."""
    items = [p for p in re.split(r"[,;\n]", text) if p.strip()]
    pairs = []
    for item in items:
        m = _PAIR.match(item)
        if not m:
            raise ValueError(f"keyframes: could not read {item.strip()!r}; expected 'frame: strength' pairs such as '0: 0, 8: 3, 15: 3'")
        frame, strength = int(m.group(1)), float(m.group(2))
        if frame < 0 or not math.isfinite(strength):
            raise ValueError(f"keyframes: {item.strip()!r} needs a frame >= 0 (frames count from 0) and a finite strength")
        pairs.append((frame, strength))
    frames = [f for f, _ in pairs]
    if len(set(frames)) != len(frames):
        raise ValueError(f"keyframes: frame {sorted(f for f in frames if frames.count(f) > 1)[0]} is given twice")
    return sorted(pairs)


def strengths(frame_count: int, keyframes: list[tuple[int, float]], constant: float = 1.0) -> np.ndarray:
    """``[frame_count]`` strengths: ``constant`` everywhere without keyframes, else the keyframes
    interpolated (keyframes past the clip's end still shape the ramp toward them)."""
    if not keyframes:
        return np.full(frame_count, float(constant))
    f = np.array([k for k, _ in keyframes], dtype=np.float64)
    s = np.array([v for _, v in keyframes], dtype=np.float64)
    return np.interp(np.arange(frame_count, dtype=np.float64), f, s)
