"""Several directions on sliders: codes edited by ``Σ value_k · direction_k``, rendered fast enough
to follow a slider (the Edit Sliders node's live preview) and swept as a strip (grid mode); and
the preview service a server route calls (``PreviewCache``, ``preview``: requests checked,
ordered per client, only the newest rendered).

The directions are brought to one space once (the widest of them: W < W+ < StyleSpace, see
``directions``), so each new set of slider values costs a weighted sum, one synthesis and a
resize. The preview renders the face at the generator's resolution and reduces it to the preview
size by area averaging; the full-size result (the node's output) is the same synthesis without
the reduction, so the preview shows exactly what queueing renders.
"""
from __future__ import annotations

import io
import logging
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from ..models.generator import Generator
from ..models.latents import Latents
from ..models.render import render, to_unit_range
from ..values import check_count, check_finite
from .directions import SPACES, Direction

MAX_SLIDERS = 8
MAX_VALUE = 1000.0  # far beyond any useful strength; refuses garbage from the preview route


def check_values(values: Sequence[float], count: int, what: str = "values") -> list[float]:
    """``count`` finite numbers of magnitude at most ``MAX_VALUE``, as floats."""
    if len(values) != count:
        raise ValueError(f"{what}: expected {count} slider values (one per direction), found {len(values)}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > MAX_VALUE:
            raise ValueError(f"{what}: expected finite numbers within +-{MAX_VALUE:g}, found {v!r}")
        out.append(float(v))
    return out


@dataclass
class SliderEdit:
    g: Generator
    latents: Latents
    directions: list[Direction]
    labels: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not 1 <= len(self.directions) <= MAX_SLIDERS:
            raise ValueError(f"Edit Sliders takes 1 to {MAX_SLIDERS} directions, found {len(self.directions)}")
        self.latents.check(self.g)
        check_finite(self.latents, "latents")
        space = max((d.space for d in self.directions), key=SPACES.index)
        if self.latents.w_plus is None and space != "s":
            space = "s"  # StyleSpace codes: edit in StyleSpace
        self.directions = [d.check(self.g).to_space(space, self.g) for d in self.directions]
        self.space = space

    def combined(self, values: Sequence[float]) -> Direction:
        values = check_values(values, len(self.directions))
        deltas = [sum(v * d.deltas[i].double() for v, d in zip(values, self.directions)) for i in range(len(self.directions[0].deltas))]
        return Direction(self.space, deltas, {"sliders": dict(zip(self.labels or range(len(values)), values))})

    def edited(self, values: Sequence[float], faces: slice | None = None) -> Latents:
        """The codes (all faces, or ``faces``) edited by the slider ``values``."""
        latents = self.latents if faces is None else self.latents.slice(faces.start, faces.stop)
        return self.combined(values).apply(self.g, latents, [1.0])[0]

    @torch.no_grad()
    def preview(self, values: Sequence[float], size: int, face: int = 0) -> torch.Tensor:
        """Face ``face`` edited by ``values``, ``[size, size, 3]`` uint8, reduced from the full-size render."""
        size = check_count(size, "size")
        image = render(self.g, self.edited(values, slice(face, face + 1)).to(self.g.w_avg.device))
        return to_uint8(reduce(image, size))[0]

    def strip(self, index: int, values: Sequence[float], low: float, high: float, steps: int) -> Latents:
        """Face 0 with direction ``index`` swept from ``low`` to ``high`` in ``steps`` (the other
        sliders at ``values``): ``steps`` codes, for a strip to pick a strength from."""
        steps = check_count(steps, "steps")
        if not 0 <= index < len(self.directions):
            raise ValueError(f"grid direction {index + 1}: there are {len(self.directions)} directions")
        values = check_values(values, len(self.directions))
        codes = []
        for k in range(steps):
            v = list(values)
            v[index] = low + (high - low) * (k / (steps - 1) if steps > 1 else 0.5)
            codes.append(self.edited(v, slice(0, 1)))
        return Latents.cat(codes)


def reduce(images: torch.Tensor, size: int) -> torch.Tensor:
    """[B, 3, H, W] -> [B, 3, size, size] by area averaging (or bilinear when enlarging)."""
    if images.shape[-1] == size:
        return images
    mode = "area" if images.shape[-1] > size else "bilinear"
    return F.interpolate(images.float(), size=(size, size), mode=mode)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] generator range -> [B, H, W, 3] uint8 (round half up, as PIL previews are)."""
    return (to_unit_range(images) * 255).round().to(torch.uint8).cpu()


# ---- the live preview service -------------------------------------------------------------------

PREVIEW_SIZES = (128, 256, 512, 1024)
MAX_CACHED = 8  # nodes whose last run can be previewed (the newest ones)
_NODE_ID = re.compile(r"[0-9A-Za-z:_\-.]{1,64}")
log = logging.getLogger(__name__)


class PreviewCache:
    """node id -> the SliderEdit of its last run, with per-node ordering of preview requests."""

    def __init__(self, size: int = MAX_CACHED):
        self.size = size
        self.edits: OrderedDict[str, SliderEdit] = OrderedDict()
        self.latest: dict[tuple[str, str], int] = {}  # (node, client) -> the newest seq seen
        self.locks: dict[str, threading.Lock] = {}
        self.guard = threading.Lock()

    def put(self, node_id: str, edit: SliderEdit):
        with self.guard:
            self.edits[node_id] = edit
            self.edits.move_to_end(node_id)
            self.locks.setdefault(node_id, threading.Lock())
            while len(self.edits) > self.size:
                old, _ = self.edits.popitem(last=False)
                self.latest = {k: v for k, v in self.latest.items() if k[0] != old}

    def get(self, node_id: str) -> SliderEdit | None:
        with self.guard:
            return self.edits.get(node_id)


def jpeg(pixels: torch.Tensor, quality: int = 90) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels.numpy()).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def check_request(payload) -> tuple[str, str, list, int, int]:
    """(node id, client, values, size, seq) of a preview request, or ValueError saying what is wrong."""
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object {node, values, size, seq, client}")
    node = payload.get("node")
    if not isinstance(node, str) or not _NODE_ID.fullmatch(node):
        raise ValueError(f"node: expected a node id (letters, digits, ':', '_', '-', '.'), found {node!r}")
    client = payload.get("client", "")
    if not isinstance(client, str) or not (client == "" or _NODE_ID.fullmatch(client)):
        raise ValueError(f"client: expected a short id (letters, digits, ':', '_', '-', '.'), found {client!r}")
    size = payload.get("size", 256)
    if size not in PREVIEW_SIZES:
        raise ValueError(f"size: expected one of {PREVIEW_SIZES}, found {size!r}")
    seq = payload.get("seq", 0)
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise ValueError(f"seq: expected an integer, found {seq!r}")
    values = payload.get("values")
    if not isinstance(values, list):
        raise ValueError(f"values: expected a list of numbers, found {type(values).__name__}")
    return node, client, values, size, seq


def preview(payload, cache: PreviewCache) -> tuple[int, bytes | str]:
    """(HTTP status, JPEG bytes or a message) for a preview request; blocking (run it in a thread).

    Requests for one node are rendered one at a time; a request that has been overtaken by a
    newer one of the same client for the same node while it waited is answered 204 without
    rendering (clients count ``seq`` each on their own)."""
    try:
        node, client, values, size, seq = check_request(payload)
    except ValueError as e:
        return 400, str(e)
    edit = cache.get(node)
    if edit is None:
        return 404, f"node {node} has no slider edit to preview: queue the workflow once"
    try:
        values = check_values(values, len(edit.directions))
    except ValueError as e:
        return 400, str(e)
    key = (node, client)
    with cache.guard:
        if seq < cache.latest.get(key, -1):
            return 204, "superseded"
        cache.latest[key] = seq
        lock = cache.locks[node]
    with lock:
        if seq < cache.latest.get(key, -1):
            return 204, "superseded"  # a newer request came while this one waited
        try:
            with torch.inference_mode():
                pixels = edit.preview(values, size)
        except (RuntimeError, ValueError) as e:  # e.g. the model was offloaded mid-render
            log.warning("StyleCLIP slider preview of node %s failed: %s", node, e)
            return 503, f"preview failed: {e}"
    return 200, jpeg(pixels)
