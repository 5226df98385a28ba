"""STIT's stitching masks (``edit_video_stitching_tuning.py`` at fac087f: ``create_masks``,
``calc_masks``; ``utils/morphology.py``: ``dilation``), SPEC section 16.2, and the feathered
paste mask (``utils/edit_utils.py``: ``paste_image_mask``).

* ``dilation(m, k)``: a max filter over a k x k window centred on each pixel (k odd); pixels
  outside the image never win (STIT's "geodesic" border), which is what ``max_pool2d``'s implicit
  -inf padding does.
* ``create_masks(bp, mask, inner, outer, whole)`` of a foreground mask ``[B, 1, S, S]`` in {0, 1}:
  ``temp`` = mask dilated by ``2 inner + 1`` (or the mask when inner = 0); ``edge`` = pixels within
  ``bp`` of a side; ``border = min(edge, temp)``; ``full`` = temp dilated by ``2 outer + 1``;
  ``ring = 1 - temp`` when ``whole`` else ``full - temp``; ``border = clip(max(border, ring), 0, 1)``;
  ``content = clip(mask - border, 0, 1)``. Returns (content, border, full).
* ``stitching_masks(crops, parser, outer=50, inner=0, whole=False)``: the real frame crops in
  [-1, 1], nearest-resized to 512, mapped to [0, 1], ImageNet-normalised and parsed with BiSeNet;
  foreground = every class but background (0), cloth (16) and hat (18); ``create_masks(outer // 2,
  fg, inner // 2, outer // 2, whole)`` at 512; each mask bilinear-resized (align corners) to the
  crop size. The pixel counts are STIT's, in pixels of a 1024 crop (halved at the parser's 512),
  so the masks keep their proportions at any generator size.
* ``feathered(full, radius)``: the paste mask softened as STIT's ``paste_image_mask`` does with
  ``radius = outer // 2``: eroded by a ``2r + 1`` box (outside counts as 0), then a Gaussian blur
  of the same width with OpenCV's kernel for that width (sigma ``0.3 ((k - 1) / 2 - 1) + 0.8``,
  fixed tables up to 7); ``r`` scales with the crop size as the dilations do.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.face_parser import MEAN, STD  # ImageNet's, as face-parsing.PyTorch

PARSER_SIZE = 512  # calc_masks parses at 512 ...
STIT_CROP = 1024  # ... crops of 1024
BACKGROUND_CLASSES = (0, 16, 18)  # background, cloth, hat (CelebAMask-HQ indices, SPEC 14.3)
DEFAULT_OUTER, DEFAULT_INNER = 50, 0  # --outer_mask_dilation, --inner_mask_dilation


def dilation(mask: torch.Tensor, size: int) -> torch.Tensor:
    """Grey-level dilation of ``[B, C, H, W]`` by a flat ``size`` x ``size`` square (size odd)."""
    if size % 2 != 1:
        raise ValueError(f"dilation window must be odd, found {size}")
    # a square's max is the max of the column maxes: two 1-D passes (k + k, not k^2, per pixel), the same values
    r = size // 2
    return F.max_pool2d(F.max_pool2d(mask, (size, 1), stride=1, padding=(r, 0)), (1, size), stride=1, padding=(0, r))


def create_masks(border_pixels: int, mask: torch.Tensor, inner_dilation: int = 0, outer_dilation: int = 0,
                 whole_image_border: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    size = mask.shape[2]  # STIT takes the masks as square
    idx = torch.arange(size, device=mask.device)
    edge_1d = (idx < border_pixels) | (idx >= size - border_pixels)
    edge = (edge_1d[:, None] | edge_1d[None, :]).to(mask.dtype)[None, None].expand_as(mask)
    temp = dilation(mask, 2 * inner_dilation + 1) if inner_dilation != 0 else mask
    border = torch.minimum(edge, temp)
    full = dilation(temp, 2 * outer_dilation + 1)
    ring = 1 - temp if whole_image_border else full - temp
    border = torch.maximum(border, ring).clip(0, 1)
    content = (mask - border).clip(0, 1)
    return content, border, full


def foreground(crops: torch.Tensor, parser) -> torch.Tensor:
    """``[B, 1, 512, 512]`` in {0, 1}: the face-parsing foreground of crops ``[B, 3, S, S]`` in [-1, 1]."""
    x = F.interpolate(crops, (PARSER_SIZE, PARSER_SIZE), mode="nearest")
    x = (x.clip(-1, 1) + 1) / 2
    x = (x - x.new_tensor(MEAN)[:, None, None]) / x.new_tensor(STD)[:, None, None]
    logits = parser(x)
    classes = (logits[0] if isinstance(logits, (tuple, list)) else logits).argmax(dim=1, keepdim=True)
    keep = torch.ones_like(classes, dtype=torch.bool)
    for c in BACKGROUND_CLASSES:
        keep &= classes != c
    return keep.to(crops.dtype)


def stitching_masks(crops: torch.Tensor, parser, outer_dilation: int = DEFAULT_OUTER, inner_dilation: int = DEFAULT_INNER,
                    whole_image_border: bool = False, size: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(content, border, full), each ``[B, 1, size, size]`` (``size``: the crops' by default)."""
    for name, value in (("outer_dilation", outer_dilation), ("inner_dilation", inner_dilation)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0 pixels, found {value}")
    size = size or crops.shape[-1]
    with torch.no_grad():
        fg = foreground(crops, parser)
        masks = create_masks(outer_dilation // 2, fg, inner_dilation // 2, outer_dilation // 2, whole_image_border)
    return tuple(F.interpolate(m, (size, size), mode="bilinear", align_corners=True) for m in masks)


# getGaussianKernel's fixed kernels for the smallest widths when sigma is 0
OPENCV_SMALL_KERNELS = {1: [1.0], 3: [0.25, 0.5, 0.25], 5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
                        7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125]}


def opencv_sigma(ksize: int) -> float:
    """OpenCV's Gaussian sigma for a kernel of ``ksize`` when sigma is given as 0 (getGaussianKernel)."""
    return 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8


def opencv_gaussian(ksize: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """The 1-D kernel of ``cv2.GaussianBlur(..., (ksize, ksize), sigmaX=0)``."""
    if ksize in OPENCV_SMALL_KERNELS:
        return torch.tensor(OPENCV_SMALL_KERNELS[ksize], dtype=dtype, device=device)
    sigma = opencv_sigma(ksize)
    t = torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2
    g = torch.exp(-t * t / (2 * sigma * sigma))
    return (g / g.sum()).to(dtype=dtype, device=device)


def feathered(full: torch.Tensor, radius: float) -> torch.Tensor:
    """``full`` ``[B, 1, S, S]`` eroded by a ``2r + 1`` box and blurred over the same width (``r``
    rounded to whole pixels; 0 = no feathering)."""
    r = int(round(radius))
    if r <= 0:
        return full
    k = 2 * r + 1
    eroded = -dilation(F.pad(-full, (r, r, r, r), value=0.0), k)[..., r:-r, r:-r]  # outside counts as 0
    g = opencv_gaussian(k, full.dtype, full.device)
    # separable blur with OpenCV's default border (reflect-101)
    x = F.pad(eroded, (r, r, 0, 0), mode="reflect") if eroded.shape[-1] > r else F.pad(eroded, (r, r, 0, 0), mode="replicate")
    x = F.conv2d(x, g.view(1, 1, 1, k))
    x = F.pad(x, (0, 0, r, r), mode="reflect") if x.shape[-2] > r else F.pad(x, (0, 0, r, r), mode="replicate")
    return F.conv2d(x, g.view(1, 1, k, 1)).clamp(0, 1)


def scaled_pixels(pixels: int, crop_size: int) -> float:
    """STIT's pixel counts are of a 1024 crop: the same extent at ``crop_size``."""
    return pixels * crop_size / STIT_CROP
