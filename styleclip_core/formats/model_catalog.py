"""The model files the pack uses, where they go and where they come from, and a check of a
models folder against that list (``python -m styleclip_core check-models --models-dir DIR``).

A file is verified by loading it with the pack's own safe loader and comparing the architecture
it describes with the official one (and by its SHA-256 where the publisher states it), so a
truncated download, a wrong file under the right name, or a tiny stand-in is reported.
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass, field
from typing import Callable

from .files import TINY_MARK


@dataclass(frozen=True)
class ModelFile:
    kind: str
    filename: str
    folder: str  # under ComfyUI/models
    url: str  # where the file is published (what a workflow's missing-model notice links to)
    source: str
    licence: str
    size: str  # as published / as the official architecture implies
    used_by: str
    check: Callable[[str], str]  # returns a one-line description; raises on a wrong file
    sha256: str | None = None  # stated by the publisher (prefix match is enough)
    required: bool = False
    alternatives: tuple[str, ...] = field(default_factory=tuple)


def _generator(path):
    from ..models.generator import stylegan2_channels
    from .generator_files import load_generator

    g = load_generator(path)
    if g.is_tiny_stand_in:
        raise ValueError("a tiny random stand-in, not the real model")
    if getattr(g, "architecture", None) == "stylegan3":
        raise ValueError(f"a StyleGAN3 generator ({g.size}px), not StyleGAN2 FFHQ config-f")
    if (g.size, g.style_dim, g.n_mlp) != (1024, 512, 8) or g.channels != stylegan2_channels(1024):
        raise ValueError(f"a StyleGAN2 generator, but {g.size}px / style {g.style_dim} / {g.n_mlp} mapping layers, not FFHQ config-f 1024")
    return f"StyleGAN2 1024px config-f, W average {'present' if g.has_w_avg else 'absent'}"


def _stylegan3(config: str):
    """The check of NVIDIA's StyleGAN3 FFHQ pickle of ``config`` ('t' or 'r'): a StyleGAN3 generator
    of 1024 px with 16 W+ rows (14 layers and the input), 512-d W, and the config's convolutions
    (T: 3x3, R: 1x1 with radial filters)."""
    kernel = {"t": 3, "r": 1}[config]

    def check(path):
        from ..models.stylegan3 import DEFAULTS
        from .generator_files import load_generator

        g = load_generator(path)
        if getattr(g, "architecture", None) != "stylegan3":
            raise ValueError(f"a StyleGAN2 generator ({g.size}px), not a StyleGAN3 one")
        if g.is_tiny_stand_in:
            raise ValueError("a tiny random stand-in, not the real model")
        c = {**DEFAULTS, **g._config}
        if (g.size, g.n_latent, g.style_dim) != (1024, 16, 512):
            raise ValueError(f"a StyleGAN3 generator, but {g.size}px / {g.n_latent} W+ rows / W {g.style_dim}, not FFHQ 1024px (16 rows of 512)")
        if int(c["conv_kernel"]) != kernel:
            other = "R (1x1 convolutions)" if int(c["conv_kernel"]) == 1 else f"T ({c['conv_kernel']}x{c['conv_kernel']} convolutions)"
            raise ValueError(f"a StyleGAN3-{other} generator, not config {config.upper()} (conv_kernel {kernel})")
        return f"StyleGAN3-{config.upper()} 1024px, 16 W+ rows, conv_kernel {kernel}"

    return check


def _e4e(path):
    from .e4e_files import load_e4e

    enc, g = load_e4e(path)
    if getattr(enc, "is_tiny_stand_in", False):
        raise ValueError("a tiny random stand-in, not the real model")
    if enc.style_count != 18 or len(enc.body) != 24 or g.size != 1024:
        raise ValueError(f"an e4e encoder, but {len(enc.body)} IR-SE units / {enc.style_count} styles / {g.size}px generator, not the FFHQ encoder")
    return "e4e IR-SE50 encoder, 18 W+ rows, with its 1024px generator"


def _clip(path):
    from .clip_files import load_clip

    clip = load_clip(path)
    dim = clip.encode_texts(["a face"]).shape[-1]
    if dim != 512 or clip.image_size != 224:
        raise ValueError(f"a CLIP model with {dim}-d embeddings at {clip.image_size}px, not ViT-B/32")
    return f"CLIP ({clip.name}), 512-d, 224px"


def _arcface(path):
    from ..models.irse import IR_SE50, units_of
    from .arcface_files import load_arcface

    net = load_arcface(path)
    units = [(m.res_layer[1].in_channels, m.res_layer[1].out_channels) for m in net.body]
    if units != [(a, b) for a, b, _ in units_of(IR_SE50)]:
        raise ValueError(f"an IR-SE backbone with {len(units)} units, not IR-SE50")
    return "ArcFace IR-SE50"


def _mapper(path):
    from .mapper_files import load_mapper

    mapper, decoder = load_mapper(path)
    if mapper.options.get(TINY_MARK):
        raise ValueError("a tiny random stand-in, not the real model")
    return f"{mapper.mapper_type} for {mapper.options.get('description', '?')!r}" + (", with its generator" if decoder else "")


def _parser(path):
    from .face_parser_files import load_face_parser

    net = load_face_parser(path)
    widths = tuple(getattr(net.cp.resnet, f"layer{i}")[0].conv1.out_channels for i in range(1, 5))
    if widths != (64, 128, 256, 512):
        raise ValueError(f"a BiSeNet with widths {widths}, not the released ResNet18 one")
    return "BiSeNet face parser, 19 classes"


def _mediapipe(path):
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except zipfile.BadZipFile:
        raise ValueError("not a MediaPipe task bundle (a zip archive)") from None
    if not {"face_detector.tflite", "face_landmarks_detector.tflite"} <= names:
        raise ValueError(f"a task bundle without the face detector and landmarker models ({sorted(names)[:4]})")
    return "MediaPipe face landmarker bundle"


def _fs3(path):
    from .fs3_files import load_fs3

    fs3 = load_fs3(path)
    if fs3.ndim != 2 or fs3.shape[1] != 512 or fs3.shape[0] not in (5376, 6048):
        raise ValueError(f"an array of shape {list(fs3.shape)}, not [5376 or 6048, 512]")
    return f"channel relevance fs3 {list(fs3.shape)}"


def _lpips_backbone(net):
    def check(path):
        from .lpips_files import read_backbone

        _, tiny = read_backbone(net, path)
        if tiny:
            raise ValueError("a tiny random stand-in, not the real model")
        return f"torchvision {'VGG16' if net == 'vgg' else 'AlexNet'} features for LPIPS-{net}"

    return check


NC = "non-commercial"
CATALOG: list[ModelFile] = [
    ModelFile("generator", "stylegan2-ffhq-config-f.pt", "stylegan",
              "https://drive.google.com/file/d/1EM87UquaoQmk17Q8d5kYIAHqu0dkYqdT",
              "rosinality's conversion of NVIDIA's FFHQ config-f, linked by StyleCLIP and e4e",
              f"NVIDIA Source Code License-NC ({NC}); trained on FFHQ (CC BY-NC-SA 4.0)", "about 133 MB of generator weights (33.2 M values; files that also keep the training copies g/d are larger)",
              "every method (optional when e4e_ffhq_encode.pt or an official mapper is used: they contain this generator)", _generator,
              alternatives=("stylegan2-ffhq-config-f.pkl (NVIDIA TensorFlow, https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-ffhq-config-f.pkl)",
                            "ffhq.pkl (stylegan2-ada-pytorch, https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/ffhq.pkl)")),
    *(ModelFile(f"generator_sg3_{c}", f"stylegan3-{c}-ffhq-1024x1024.pkl", "stylegan",
                f"https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/stylegan3-{c}-ffhq-1024x1024.pkl",
                f"NVIDIA's StyleGAN3-{c.upper()} for FFHQ 1024px (NGC catalog, nvidia/research/stylegan3, linked by NVlabs/stylegan3's README)",
                f"NVIDIA Source Code License for StyleGAN3 ({NC}); trained on FFHQ (CC BY-NC-SA 4.0)", size,
                "StyleGAN3 editing (optional): sampling, text edits, SeFa / GANSpace, global directions, local edits, mappers, NADA; "
                "no e4e photo inversion or video chain", _stylegan3(c))
      for c, size in (("t", "about 89 MB of generator weights (22.3 M values; the pickle also holds the training copy G and the discriminator, so it is larger)"),
                      ("r", "about 60 MB of generator weights (15.1 M values; the pickle also holds the training copy G and the discriminator, so it is larger)"))),
    ModelFile("e4e", "e4e_ffhq_encode.pt", "e4e",
              "https://drive.google.com/file/d/1cUv_reLE6k3604or78EranS7XzuVMWeO",
              "encoder4editing release, 'FFHQ Inversion'",
              f"MIT (code); its bundled StyleGAN2 generator: NVIDIA Source Code License-NC ({NC})", "about 1.2 GB (267 M encoder + 33 M generator values)",
              "real photos (Invert Images); also provides the generator", _e4e),
    ModelFile("clip", "ViT-B-32.pt", "openclip",
              "https://openaipublic.azureedge.net/clip/models/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
              "OpenAI CLIP release (the file clip.load('ViT-B/32') downloads)",
              "MIT (OpenAI CLIP)", "about 338 MB", "text edits (CLIP losses, global directions, CLIP Score)", _clip,
              sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"),
    ModelFile("arcface", "model_ir_se50.pth", "arcface",
              "https://drive.google.com/file/d/1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn",
              "pSp / e4e release, 'IR-SE50 Model' (from TreB1eN's InsightFace_Pytorch)",
              "MIT (code); trained on MS-Celeb-1M (research use)", "about 175 MB (43.8 M values)", "identity loss (optional)", _arcface),
    ModelFile("mapper", "purple_hair.pt", "styleclip_mappers",
              "https://drive.google.com/uc?id=14H0CGXWxePrrKIYmZnDD2Ccs65EEww75",
              "StyleCLIP pretrained mappers (links in utils.py of the StyleCLIP repository): purple_hair, afro, angry, beyonce, "
              "bobcut, bowlcut, curly_hair, depp, hilary_clinton, mohawk, surprised, taylor_swift, trump, zuckerberg",
              f"MIT (StyleCLIP); the bundled generator: NVIDIA Source Code License-NC ({NC})", "about 146 MB each (3.2 M mapper + 33 M generator values)",
              "latent mappers", _mapper),
    ModelFile("face_parser", "79999_iter.pth", "face_parsing",
              "https://drive.google.com/open?id=154JgKpzCPW82qINcVieuPH3fZ2e0P812",
              "face-parsing.PyTorch release (its README's pre-trained model)",
              f"MIT (code); trained on CelebAMask-HQ ({NC} research use)", "about 51 MB", "Face Parsing Mask (mask-local edits)", _parser),
    ModelFile("landmarks", "face_landmarker.task", "mediapipe",
              "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/latest/face_landmarker.task",
              "MediaPipe Face Landmarker model (Tasks API); only needed with mediapipe 0.10.30 or later (Python 3.13), "
              "which has no built-in face mesh", "Apache-2.0", "about 3.6 MB",
              "Align Faces with mediapipe 0.10.30 or later (optional: the requirements' mediapipe 0.10.14 finds faces without it)", _mediapipe),
    ModelFile("fs3", "fs3.npy", "styleclip_global",
              "https://github.com/orpatashnik/StyleCLIP/tree/main/global_torch/npy/ffhq",
              "StyleCLIP repository, global_torch/npy/ffhq/fs3.npy (or compute it with the pack's channel relevance)", "MIT (StyleCLIP)",
              "about 12 MB (6048 x 512 float32)", "global directions", _fs3),
    ModelFile("lpips_alex", "alexnet-owt-7be5be79.pth", "lpips",
              "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
              "torchvision's ImageNet AlexNet (the backbone lpips.LPIPS(net='alex') loads; the v0.1 heads come with the lpips package)",
              "BSD-3-Clause (torchvision)", "about 233 MB (61.1 M values; only the 2.5 M of features.* are used)",
              "Pivotal Tuning's loss, Edit Metrics' LPIPS", _lpips_backbone("alex"), sha256="7be5be79"),
    ModelFile("lpips_vgg", "vgg16-397923af.pth", "lpips",
              "https://download.pytorch.org/models/vgg16-397923af.pth",
              "torchvision's ImageNet VGG16 (the backbone of lpips.LPIPS(net='vgg'), and of the projector's feature distance)",
              "BSD-3-Clause (torchvision)", "about 528 MB (138 M values; only the 14.7 M of features.* are used)",
              "Project Latents (W / W+ projector)", _lpips_backbone("vgg"), sha256="397923af"),
]


def by_filename(name: str) -> ModelFile | None:
    return next((e for e in CATALOG if e.filename == name), None)


def sha256(path: str, chunk: int = 1 << 24) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_models(models_dir: str, verify: bool = True) -> list[tuple[ModelFile, str, str]]:
    """(entry, status, detail) per catalog file: status is OK, MISSING or PROBLEM."""
    rows = []
    for entry in CATALOG:
        path = os.path.join(models_dir, entry.folder, entry.filename)
        if not os.path.isfile(path):
            rows.append((entry, "MISSING", f"put it in {os.path.join(models_dir, entry.folder)}; get it from {entry.url}"))
            continue
        if entry.sha256:
            digest = sha256(path)
            if not digest.startswith(entry.sha256):
                rows.append((entry, "PROBLEM", f"SHA-256 {digest[:16]}... differs from the published {entry.sha256[:16]}...; download it again"))
                continue
        if not verify:
            rows.append((entry, "OK", f"{os.path.getsize(path) / 1e6:.0f} MB (not verified)"))
            continue
        try:
            rows.append((entry, "OK", entry.check(path)))
        except Exception as e:  # noqa: BLE001 - every failure of a file is reported, not raised
            rows.append((entry, "PROBLEM", f"{type(e).__name__}: {e}"))
    return rows


def format_report(rows) -> str:
    width = max(len(f"{e.folder}/{e.filename}") for e, _, _ in rows)
    return "\n".join(f"{status:<8} {e.folder + '/' + e.filename:<{width}}  {detail}" for e, status, detail in rows)
