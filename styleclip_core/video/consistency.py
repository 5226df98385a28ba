"""How consistent an edited clip is, frame to frame (the measures STIT argues with; no reference
code computes them, so they are defined here):

* ``temporal_change(frames, masks)``: the mean absolute change between consecutive frames
  (0..1 units, over the 3 channels) inside the face, weighted by the union (max) of the two
  frames' masks. ``flicker`` is the output's change over the input's: motion in the clip moves
  both alike, so 1 means the edit added no flicker, above 1 that it did.
* ``identity_across_frames(arcface, crops)``: ArcFace (IR-SE50) embeddings of the face crops with
  StyleCLIP's ID preprocessing (``models.irse.identity_features``): the mean cosine between
  consecutive frames and the lowest cosine of any frame to the clip's mean embedding; with the
  input crops too, the mean cosine of each output face to its input face (identity kept).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models.irse import identity_features
from ..models.render import from_unit_range


def temporal_change(frames: torch.Tensor, masks: torch.Tensor | None = None) -> float:
    """``frames`` ``[T, H, W, C]`` in [0, 1], ``masks`` ``[T, H, W]`` (None: everywhere)."""
    if frames.shape[0] < 2:
        return float("nan")
    d = (frames[1:, ..., :3] - frames[:-1, ..., :3]).abs().mean(-1)
    if masks is None:
        return float(d.mean())
    m = torch.maximum(masks[1:], masks[:-1]).to(d.dtype)
    return float((d * m).sum() / m.sum().clamp_min(1e-12))


@torch.no_grad()
def embeddings(arcface, crops: torch.Tensor, chunk: int = 8) -> torch.Tensor:
    """Unit ArcFace embeddings of crops ``[N, S, S, 3]`` in [0, 1]."""
    device = next(arcface.parameters()).device
    out = [identity_features(arcface, from_unit_range(crops[i: i + chunk]).to(device)) for i in range(0, crops.shape[0], chunk)]
    e = torch.cat(out).double()
    return e / e.norm(dim=1, keepdim=True)


@dataclass
class ClipConsistency:
    frames: int
    change_in: float
    change_out: float
    identity_consecutive: float | None = None
    identity_to_mean_min: float | None = None
    identity_to_input: float | None = None

    @property
    def flicker(self) -> float:
        return self.change_out / self.change_in if self.change_in > 0 else float("nan")

    def table(self) -> str:
        rows = [("frames", f"{self.frames}"),
                ("frame-to-frame change inside the face, input (0..1)", f"{self.change_in:.4f}"),
                ("frame-to-frame change inside the face, output (0..1)", f"{self.change_out:.4f}"),
                ("flicker (output change / input change; 1 = none added)", f"{self.flicker:.3f}")]
        if self.identity_consecutive is not None:
            rows += [("identity, consecutive output frames (mean cosine)", f"{self.identity_consecutive:.4f}"),
                     ("identity, lowest cosine of a frame to the clip's mean", f"{self.identity_to_mean_min:.4f}")]
        if self.identity_to_input is not None:
            rows.append(("identity, output face to input face (mean cosine)", f"{self.identity_to_input:.4f}"))
        return "| measure | value |\n| --- | --- |\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


def clip_consistency(frames_in: torch.Tensor, frames_out: torch.Tensor, masks: torch.Tensor | None = None, arcface=None,
                     crops_out: torch.Tensor | None = None, crops_in: torch.Tensor | None = None) -> ClipConsistency:
    if frames_in.shape[:3] != frames_out.shape[:3]:
        raise ValueError(f"frames: the input clip is {list(frames_in.shape[:3])} (frames, height, width) and the output "
                         f"{list(frames_out.shape[:3])}; compare a clip with its own edit")
    if masks is not None and masks.shape != frames_in.shape[:3]:
        raise ValueError(f"masks: expected [frames, height, width] = {list(frames_in.shape[:3])}, found {list(masks.shape)}")
    result = ClipConsistency(frames_in.shape[0], temporal_change(frames_in, masks), temporal_change(frames_out, masks))
    if arcface is not None and crops_out is not None:
        e = embeddings(arcface, crops_out)
        if e.shape[0] > 1:
            result.identity_consecutive = float((e[1:] * e[:-1]).sum(1).mean())
        mean = e.mean(0)
        result.identity_to_mean_min = float((e @ (mean / mean.norm())).min())
        if crops_in is not None:
            if crops_in.shape[0] != crops_out.shape[0]:
                raise ValueError(f"crops: {crops_in.shape[0]} input faces for {crops_out.shape[0]} output faces")
            result.identity_to_input = float((embeddings(arcface, crops_in) * e).sum(1).mean())
    return result
