"""Deterministic stand-ins for CLIP, as described in fixtures/latent_optimization.json.

Not a real CLIP: the image embedding is a fixed linear map of 32x32-pooled pixels and every
prompt has the same embedding. It plugs into ``ClipModel`` in place of an open_clip network, so
the pack's own preprocessing, normalisation and loss maths run as they do with a real model.
"""
import math
import zlib

import torch
import torch.nn.functional as F
from torch import nn

from styleclip_core.models.clip import ClipModel


VOCAB = 1024


class StandInCLIPNet(nn.Module):
    """encode_image: CLIP input [B, 3, 224, 224] -> avg_pool2d(32) -> flatten(147) @ P.T;
    encode_text: ``text_feature`` plus a per-prompt offset (zero in the fixture's stand-in,
    where every prompt has the same feature); logit scale 100 (stored as its log)."""

    def __init__(self, P: torch.Tensor, text_feature: torch.Tensor, offsets: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("P", P.clone())
        self.register_buffer("text_feature", text_feature.clone())
        self.register_buffer("offsets", offsets if offsets is not None else torch.zeros(VOCAB, P.shape[0]))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(100.0)))

    def encode_image(self, x):
        return F.avg_pool2d(x, 32).flatten(1) @ self.P.t()

    def encode_text(self, tokens):
        return self.text_feature + self.offsets[tokens[:, 0]]


def stand_in_tokenizer(texts):
    return torch.tensor([[zlib.crc32(t.encode()) % VOCAB] for t in texts])


def stand_in_clip(P=None, text_feature=None, seed=0, preprocessing="styleclip") -> ClipModel:
    """The fixture's stand-in (given ``P`` and ``text_feature``), or a seeded random one whose
    prompts have different features."""
    offsets = None
    if P is None:
        gen = torch.Generator().manual_seed(seed)
        P, text_feature = torch.randn(16, 147, generator=gen), torch.randn(16, generator=gen)
        offsets = torch.randn(VOCAB, 16, generator=gen)
    return ClipModel(StandInCLIPNet(P, text_feature, offsets), stand_in_tokenizer, 224, preprocessing=preprocessing, name="stand-in")
