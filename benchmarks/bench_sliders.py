"""Edit Sliders' live preview: the time from new slider values to the JPEG the route answers.

    python benchmarks/bench_sliders.py [--sizes 256 1024] [--preview 256 512] [--repeats 5] [--device cpu]

One full-size config-f generator per size on seeded random weights, one face, three directions on
the sliders (a random W direction, SeFa component 0, a random StyleSpace direction: the edit runs in
StyleSpace, the slowest case). Per measurement: the route's work for a new set of values
(``edits.sliders.preview``: validation, the weighted sum of the directions, one synthesis at full
size, the area reduction to the preview size, JPEG encoding), best and median of ``--repeats``
calls with different values after one warm-up call, and the peak memory over the loaded models.
The browser's part (the request, decoding and drawing the JPEG) is measured by
tests/test_sliders_browser.py. Goals (issue 15): under 1 s for a 256 px generator on a 2-core CPU;
under 100 ms for a 1024 px generator on a GPU with the preview at 512.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)


def build(size: int, device: str):
    import torch

    from bench_generator import build as build_generator
    from styleclip_core.edits.directions import Direction
    from styleclip_core.edits.factorization import sefa_direction
    from styleclip_core.edits.sliders import SliderEdit
    from styleclip_core.models.latents import sample_latents

    g = build_generator(size, device)
    gen = torch.Generator().manual_seed(3)
    w = Direction("w", [torch.randn(g.style_dim, generator=gen).double()])
    s = Direction("s", [torch.randn(layer.channels, generator=gen).double() * 0.1 for layer in g.style_layers])
    return SliderEdit(g, sample_latents(g, 1, seed=1, truncation_psi=0.7), [w, sefa_direction(g, 0), s])


def route_work(edit, preview_size: int):
    """What the route does for one request, as a callable taking the values."""
    from styleclip_core.edits.sliders import PreviewCache, preview

    cache = PreviewCache()
    cache.put("1", edit)
    state = {"seq": 0}

    def call(values):
        state["seq"] += 1
        status, body = preview({"node": "1", "values": values, "size": preview_size, "seq": state["seq"]}, cache)
        assert status == 200, body
        return body

    return call


def measure(size: int, preview_size: int, repeats: int, device: str) -> dict:
    from benchutil import PeakMemory, sync

    edit = build(size, device)
    call = route_work(edit, preview_size)
    call([0.5, 0.5, 0.5])  # warm-up
    times = []
    with PeakMemory(device) as peak:
        for k in range(repeats):
            values = [0.3 * k, -0.2 * k, 0.1 * k]
            sync(device)
            t = time.perf_counter()
            call(values)
            sync(device)
            times.append(time.perf_counter() - t)
    return {"best": min(times), "median": statistics.median(times), "peak_mb": peak.mb}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--preview", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    import torch

    from benchutil import where

    print(f"torch {torch.__version__}, {where(args.device)}; one face, 3 directions (W, SeFa, StyleSpace: edited in StyleSpace)")
    print(f"{'generator':>9} {'preview':>7} | {'best ms':>8} {'median ms':>9} | {'peak MB':>8}")
    for size in args.sizes:
        for preview_size in args.preview:
            r = measure(size, preview_size, args.repeats, args.device)
            print(f"{size:>9} {preview_size:>7} | {r['best'] * 1e3:>8.1f} {r['median'] * 1e3:>9.1f} | {r['peak_mb']:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
