"""styleclip_core: StyleCLIP and its methods on StyleGAN2, as a library (no ComfyUI in it).

Layers, each importing only the ones above it in this list:

* ``errors``, ``precision``, ``progress``, ``values``: the shared vocabulary (error type, the one
  precision vocabulary, the one progress callback, the checks of bad values: non-finite numbers,
  counts, seeds);
* ``ops``: the StyleGAN2 ops (upfirdn2d, fused bias + leaky ReLU) and StyleGAN3's filtered
  leaky ReLU, a PyTorch reference and a CUDA plugin behind one function each;
* ``models``: the networks (generator, latents and rendering, e4e, IR-SE / ArcFace, CLIP,
  BiSeNet face parser, latent mappers); they know nothing about files;
* ``formats``: reading and writing files (official checkpoints, NVIDIA pickles, TorchScript,
  safetensors; the model catalog and the tiny stand-ins; one atomic writer, one fingerprint);
* ``edits`` and ``photos``: the methods (latent optimisation and its losses, mapper training,
  global directions and channel relevance, mask-local edits, masks) and real photos (FFHQ
  alignment, paste-back); neither imports the other;
* ``video``: a face edited through a clip (STIT: smoothed alignment, tuning on the clip, stitching);
  it composes ``edits`` and ``photos``;
* ``evaluation``: scoring and timing edits on sampled faces or photos (needs both methods and
  photos: ``python -m styleclip_core evaluate``);
* ``__main__``: the command line (``python -m styleclip_core``).

Importing the package imports nothing heavy: every layer is imported where it is used.
"""
