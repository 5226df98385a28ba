"""Tiny random-weight models written in the official file formats and under the official names.

They let a user smoke-test an install (and the tests run every shipped workflow) without
downloading gigabytes: ``python -m styleclip_core.tiny_models --models-dir ComfyUI/models``.
Existing files are never overwritten, so real checkpoints stay untouched.

The NVIDIA pickle writers emit the same opcodes NVIDIA's code would (persistent objects
rebuilt by ``torch_utils.persistence._reconstruct_persistent_obj``, TensorFlow ``Network``
objects); they register placeholder modules of those names only while pickling.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import pickle
import sys
import types
from collections import OrderedDict

import numpy as np
import torch

from ..models.e4e import Encoder4Editing
from ..models.generator import Generator, num_conv_channels
from ..models.irse import units_of
from ..models.stylegan3 import StyleGAN3Generator
from .files import TINY_MARK

TINY_GENERATOR = {"size": 64, "style_dim": 64, "n_mlp": 2, "channels": {4: 32, 8: 32, 16: 32, 32: 16, 64: 8}}


def tiny_generator(size=64, style_dim=64, n_mlp=2, channels=None, seed=0) -> Generator:
    """A small generator with every parameter randomised (noise strengths, biases and modulation
    biases off their init values), so every code path shows in its output."""
    channels = channels or {r: c for r, c in TINY_GENERATOR["channels"].items() if r <= size}
    torch.manual_seed(seed)
    g = Generator(size, style_dim, n_mlp, channels)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("noise.weight"):
                p.uniform_(0.05, 0.3)
            elif name.endswith("modulation.bias"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
        g.w_avg.copy_(g.mean_latent(1024)[0])
        g.has_w_avg = True
    return g.eval().requires_grad_(False)


def _no_overwrite(path: str):
    if os.path.exists(path):
        raise FileExistsError(f"{path} already exists; tiny models never overwrite a file")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def write_rosinality_pt(g: Generator, path: str, mark_tiny: bool = True) -> str:
    """``{'g_ema': state_dict, 'latent_avg': [D]}`` as in ``stylegan2-ffhq-config-f.pt``."""
    _no_overwrite(path)
    ckpt = {"g_ema": g.state_dict(), "latent_avg": g.w_avg.clone()}
    if mark_tiny:
        ckpt[TINY_MARK] = True
    torch.save(ckpt, path)
    return path


# ---------------------------------------------------------------------------------------------
# NVIDIA formats


def rosinality_to_ada(g: Generator) -> dict[str, torch.Tensor]:
    """Our generator's weights under stylegan2-ada-pytorch ``G_ema`` names (inverse of the loader)."""
    sd = {k: v.detach().clone() for k, v in g.state_dict().items()}
    fir = torch.tensor([1.0, 3.0, 3.0, 1.0])
    fir = torch.outer(fir, fir) / 64
    ada = {}
    for i in range(g.n_mlp):
        ada[f"mapping.fc{i}.weight"] = sd[f"style.{i + 1}.weight"]
        ada[f"mapping.fc{i}.bias"] = sd[f"style.{i + 1}.bias"]
    ada["mapping.w_avg"] = g.w_avg.clone()
    ada["synthesis.b4.const"] = sd["input.input"][0]
    ada["synthesis.b4.resample_filter"] = fir.clone()

    def conv(dst, src, noise_index):
        ada[f"{dst}.weight"] = sd[f"{src}.conv.weight"][0]
        ada[f"{dst}.noise_strength"] = sd[f"{src}.noise.weight"].reshape(())
        ada[f"{dst}.bias"] = sd[f"{src}.activate.bias"]
        ada[f"{dst}.resample_filter"] = fir.clone()
        ada[f"{dst}.noise_const"] = sd[f"noises.noise_{noise_index}"][0, 0]
        ada[f"{dst}.affine.weight"] = sd[f"{src}.conv.modulation.weight"]
        ada[f"{dst}.affine.bias"] = sd[f"{src}.conv.modulation.bias"]

    def torgb(dst, src):
        ada[f"{dst}.weight"] = sd[f"{src}.conv.weight"][0]
        ada[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(-1)
        ada[f"{dst}.affine.weight"] = sd[f"{src}.conv.modulation.weight"]
        ada[f"{dst}.affine.bias"] = sd[f"{src}.conv.modulation.bias"]

    conv("synthesis.b4.conv1", "conv1", 0)
    torgb("synthesis.b4.torgb", "to_rgb1")
    for k in range(len(g.to_rgbs)):
        res = 2 ** (k + 3)
        ada[f"synthesis.b{res}.resample_filter"] = fir.clone()
        conv(f"synthesis.b{res}.conv0", f"convs.{2 * k}", 1 + 2 * k)
        conv(f"synthesis.b{res}.conv1", f"convs.{2 * k + 1}", 2 + 2 * k)
        torgb(f"synthesis.b{res}.torgb", f"to_rgbs.{k}")
    return ada


@contextlib.contextmanager
def _placeholder_modules(**modules):
    """Make ``module.attr`` names importable for pickle's by-reference globals, then remove them."""
    added = []
    try:
        for dotted, attrs in modules.items():
            parts = dotted.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if name not in sys.modules:
                    sys.modules[name] = types.ModuleType(name)
                    added.append(name)
            for attr, value in attrs.items():
                setattr(sys.modules[dotted], attr, value)
                if hasattr(value, "__qualname__"):
                    value.__module__ = dotted
        yield
    finally:
        for name in reversed(added):
            sys.modules.pop(name, None)


class _EasyDict(dict):
    pass


_EasyDict.__name__ = _EasyDict.__qualname__ = "EasyDict"


def _reconstruct_persistent_obj(meta):  # only a name for pickle; never called here
    raise RuntimeError("placeholder")


class _PersistentModule:
    """Pickles like a ``torch_utils.persistence`` object of NVIDIA's code."""

    def __init__(self, class_name, state):
        self.meta = dict(type="class", version=6, module_src="# source omitted in tiny model\n", class_name=class_name, state=state)

    def __reduce__(self):
        return (_reconstruct_persistent_obj, (self.meta,))


_PARAM_BUFFERS = ("w_avg", "resample_filter", "noise_const")


def _module_tree(flat: dict[str, torch.Tensor], class_names: dict[str, str], prefix: str = "") -> _PersistentModule:
    params, buffers, children = OrderedDict(), OrderedDict(), OrderedDict()
    child_keys: dict[str, dict] = OrderedDict()
    for key, value in flat.items():
        head, _, rest = key.partition(".")
        if rest:
            child_keys.setdefault(head, {})[rest] = value
        elif head in _PARAM_BUFFERS:
            buffers[head] = value
        else:
            params[head] = torch.nn.Parameter(value, requires_grad=False)
    for head, sub in child_keys.items():
        children[head] = _module_tree(sub, class_names, prefix + head + ".")
    name = prefix.rstrip(".").split(".")[-1] if prefix else ""
    state = {"training": False, "_parameters": params, "_buffers": buffers, "_modules": children, "_init_args": (), "_init_kwargs": _EasyDict()}
    return _PersistentModule(class_names.get(name, class_names.get("*", "Module")), state)


def _ada_class_names(flat):
    names = {"": "Generator", "mapping": "MappingNetwork", "synthesis": "SynthesisNetwork", "affine": "FullyConnectedLayer", "torgb": "ToRGBLayer", "conv0": "SynthesisLayer", "conv1": "SynthesisLayer"}
    names.update({k.split(".")[1]: "SynthesisBlock" for k in flat if k.startswith("synthesis.b")})
    names.update({k.split(".")[1]: "FullyConnectedLayer" for k in flat if k.startswith("mapping.fc")})
    return names


def _dump_persistent_pickle(data, path: str) -> str:
    """Pickle ``data`` (holding ``_PersistentModule``s and EasyDicts) under NVIDIA's global names."""
    with _placeholder_modules(**{"torch_utils.persistence": {"_reconstruct_persistent_obj": _reconstruct_persistent_obj}, "dnnlib.util": {"EasyDict": _EasyDict}}):
        buf = io.BytesIO()
        pickle.dump(data, buf)
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    return path


def write_ada_pkl(g: Generator, path: str) -> str:
    """A stylegan2-ada-pytorch network pickle ``{'G', 'D', 'G_ema', ...}`` holding ``g``."""
    _no_overwrite(path)
    ada = rosinality_to_ada(g)
    root = _module_tree(ada, _ada_class_names(ada))
    root.meta["state"]["_init_kwargs"] = _EasyDict(
        z_dim=g.style_dim, c_dim=0, w_dim=g.style_dim, img_resolution=g.size, img_channels=3,
        mapping_kwargs=_EasyDict(num_layers=g.n_mlp), synthesis_kwargs=_EasyDict(channel_base=32768, channel_max=512, num_fp16_res=0, conv_clamp=None),
    )
    data = {"G": root, "D": None, "G_ema": root, "training_set_kwargs": _EasyDict(resolution=g.size), "augment_pipe": None}
    return _dump_persistent_pickle(data, path)


TINY_STYLEGAN3 = {"z_dim": 64, "w_dim": 64, "img_resolution": 64, "img_channels": 3, "mapping_layers": 2, "channel_base": 1024,
                  "channel_max": 64, "num_layers": 6}


@torch.no_grad()
def tiny_stylegan3(config: str = "t", seed: int = 0) -> StyleGAN3Generator:
    """A small StyleGAN3 (config T or R) with every parameter randomised and each layer's
    ``magnitude_ema`` set to the mean square of its input over 32 sampled faces (what training
    converges to), so its images have the value range of a trained network's."""
    kwargs = dict(TINY_STYLEGAN3, **({"conv_kernel": 1, "use_radial_filters": True, "channel_base": 2048, "channel_max": 128} if config == "r" else {}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g = StyleGAN3Generator(kwargs)
        gen = torch.Generator().manual_seed(seed + 1)
        for name, p in g.named_parameters():
            scale = 1 / 0.01 if name.startswith("mapping.") else 1.0  # FullyConnected weights are stored divided by lr
            p.add_(0.1 * scale * torch.randn(p.shape, generator=gen))
        g.mapping.w_avg.copy_(g.mapping(torch.randn(1024, g.z_dim, generator=gen)).mean(0))
        styles = g.styles(g.mapping(torch.randn(32, g.z_dim, generator=gen)))
        x = g.synthesis.input(styles[0])
        for name, s in zip(g.synthesis.layer_names, styles[1:]):
            layer = getattr(g.synthesis, name)
            layer.magnitude_ema.copy_(x.square().mean())
            x = layer(x, s)
    g.is_tiny_stand_in = True
    return g.eval().requires_grad_(False)


def _sg3_class_names(names):
    out = {"": "Generator", "mapping": "MappingNetwork", "synthesis": "SynthesisNetwork", "input": "SynthesisInput", "affine": "FullyConnectedLayer"}
    out.update({n: "FullyConnectedLayer" for n in names if n.startswith("fc")})
    out.update({n: "SynthesisLayer" for n in names if n.startswith("L")})
    return out


_SG3_SOURCE = "# training/networks_stylegan3.py (source omitted in tiny model)\n"
_SG2_SOURCE = "# training/networks_stylegan2.py (source omitted in tiny model)\n"


def write_sg3_pkl(g: StyleGAN3Generator, path: str, mark_tiny: bool = True) -> str:
    """A StyleGAN3 training snapshot ``{'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}`` as
    NVIDIA's train.py writes it: persistent objects of the StyleGAN3 source for G, whose module
    state holds numpy int64 arrays and float64 scalars, the init kwargs train.py passes (the rest
    left to the defaults), and a D whose ``FullyConnectedLayer`` comes from the StyleGAN2 source."""
    _no_overwrite(path)
    flat = {k: v.detach().clone() for k, v in g.state_dict().items()}
    names = {part for k in flat for part in k.split(".")}
    buffers = {"w_avg", "transform", "freqs", "phases", "magnitude_ema", "up_filter", "down_filter"}
    specs = {spec.name: spec for spec in g.synthesis.specs}

    def tree(prefix, sub):
        params, bufs, children, child = OrderedDict(), OrderedDict(), OrderedDict(), OrderedDict()
        for key, value in sub.items():
            head, _, rest = key.partition(".")
            if rest:
                child.setdefault(head, OrderedDict())[rest] = value
            elif head in buffers:
                bufs[head] = value
            else:
                params[head] = torch.nn.Parameter(value, requires_grad=False)
        for head, s in child.items():
            children[head] = tree(prefix + head + ".", s)
        name = prefix.rstrip(".").split(".")[-1] if prefix else ""
        state = {"training": False, "_parameters": params, "_buffers": bufs, "_modules": children, "_init_args": (), "_init_kwargs": _EasyDict()}
        if name in specs:  # what SynthesisLayer keeps besides its tensors
            spec = specs[name]
            for key in ("up_filter", "down_filter"):
                bufs.setdefault(key, None)
            state.update(in_size=np.array([spec.in_size] * 2, dtype=np.int64), out_size=np.array([spec.out_size] * 2, dtype=np.int64),
                         in_sampling_rate=np.float64(spec.in_sampling_rate), out_cutoff=np.float64(spec.out_cutoff),
                         padding=[int(p) for p in spec.padding], up_factor=spec.up_factor, is_torgb=spec.is_torgb)
        if name == "input":
            state.update(size=np.array([g.synthesis.input.size] * 2, dtype=np.int64), sampling_rate=np.float64(g.synthesis.input.sampling_rate))
        obj = _PersistentModule(_sg3_class_names(names).get(name, "Module"), state)
        obj.meta["module_src"] = _SG3_SOURCE
        return obj

    root = tree("", flat)
    c = g._config
    root.meta["state"]["_init_kwargs"] = _EasyDict(
        z_dim=c["z_dim"], w_dim=c["w_dim"], mapping_kwargs=_EasyDict(num_layers=c["mapping_layers"]), channel_base=c["channel_base"],
        channel_max=c["channel_max"], magnitude_ema_beta=0.5 ** (32 / 20000), num_layers=c["num_layers"], c_dim=0,
        img_resolution=c["img_resolution"], img_channels=c["img_channels"],
        **{k: c[k] for k in ("conv_kernel", "use_radial_filters", "conv_clamp") if k in c})
    d_fc = _PersistentModule("FullyConnectedLayer", {"_parameters": OrderedDict(weight=torch.nn.Parameter(torch.zeros(1, 4), requires_grad=False)),
                                                     "_buffers": OrderedDict(), "_modules": OrderedDict(), "_init_kwargs": _EasyDict()})
    d_fc.meta["module_src"] = _SG2_SOURCE
    d = _PersistentModule("Discriminator", {"_parameters": OrderedDict(), "_buffers": OrderedDict(), "_modules": OrderedDict(fc=d_fc), "_init_kwargs": _EasyDict()})
    d.meta["module_src"] = _SG2_SOURCE
    data = {"G": root, "D": d, "G_ema": root, "augment_pipe": None, "training_set_kwargs": _EasyDict(resolution=c["img_resolution"])}
    if mark_tiny:
        data[TINY_MARK] = True
    return _dump_persistent_pickle(data, path)


class _TFNetwork:
    def __init__(self, name, variables, components=None, static_kwargs=None):
        self.state = {
            "version": 4, "name": name, "static_kwargs": static_kwargs or {}, "components": components or {},
            "build_module_src": "# source omitted in tiny model\n", "build_func_name": f"training.networks_stylegan2.{name}",
            "variables": variables, "input_shapes": [], "output_shapes": [], "input_names": [], "output_names": [],
        }

    def __getstate__(self):
        return self.state


_TFNetwork.__name__ = _TFNetwork.__qualname__ = "Network"


def write_tf_pkl(g: Generator, path: str) -> str:
    """A TensorFlow StyleGAN2 pickle ``(G, D, Gs)`` as NVIDIA released ``stylegan2-ffhq-config-f.pkl``."""
    _no_overwrite(path)
    ada = rosinality_to_ada(g)
    a = lambda t: t.numpy().astype(np.float32)  # noqa: E731
    mapping = [(f"Dense{i}/weight", a(ada[f"mapping.fc{i}.weight"].t())) for i in range(g.n_mlp)]
    mapping += [(f"Dense{i}/bias", a(ada[f"mapping.fc{i}.bias"])) for i in range(g.n_mlp)]
    synthesis = [("4x4/Const/const", a(ada["synthesis.b4.const"][None]))]
    noise_index = 0

    def layer(tf_name, ada_name, flip=False):
        nonlocal noise_index
        w = ada[f"{ada_name}.weight"].permute(2, 3, 1, 0).numpy()  # [out,in,k,k] -> [k,k,in,out]
        if flip:
            w = w[::-1, ::-1]
        out = [(f"{tf_name}/weight", np.ascontiguousarray(w)), (f"{tf_name}/bias", a(ada[f"{ada_name}.bias"])),
               (f"{tf_name}/mod_weight", a(ada[f"{ada_name}.affine.weight"].t())), (f"{tf_name}/mod_bias", a(ada[f"{ada_name}.affine.bias"] - 1))]
        if f"{ada_name}.noise_strength" in ada:
            out.append((f"{tf_name}/noise_strength", np.float32(ada[f"{ada_name}.noise_strength"].item())))
            out.append((f"noise{noise_index}", a(ada[f"{ada_name}.noise_const"][None, None])))
            noise_index += 1
        return out

    synthesis += layer("4x4/Conv", "synthesis.b4.conv1") + layer("4x4/ToRGB", "synthesis.b4.torgb")
    for k in range(len(g.to_rgbs)):
        r = 2 ** (k + 3)
        synthesis += layer(f"{r}x{r}/Conv0_up", f"synthesis.b{r}.conv0", flip=True)
        synthesis += layer(f"{r}x{r}/Conv1", f"synthesis.b{r}.conv1") + layer(f"{r}x{r}/ToRGB", f"synthesis.b{r}.torgb")
    components = {"mapping": _TFNetwork("G_mapping", mapping), "synthesis": _TFNetwork("G_synthesis", synthesis)}
    gs = _TFNetwork("G", [("dlatent_avg", a(ada["mapping.w_avg"])), ("lod", np.float32(0))], components, {"resolution": g.size})
    with _placeholder_modules(**{"dnnlib.tflib.network": {"Network": _TFNetwork}}):
        buf = io.BytesIO()
        pickle.dump((gs, _TFNetwork("D", []), gs), buf)
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    return path


# ---------------------------------------------------------------------------------------------
# e4e

# IR-SE stages (in, out, units) of the tiny encoder: 4 stages as e4e's FPN needs, each changing
# width (that is how a loader tells stage starts), widths >= 16 for the squeeze-excite reduction.
TINY_E4E_STAGES = ((16, 16, 1), (16, 32, 1), (32, 48, 1), (48, 64, 1))


def tiny_e4e(g: Generator, seed=0):
    """A small random ``Encoder4Editing`` producing W+ for ``g``."""
    return random_e4e(g, units_of(TINY_E4E_STAGES), seed)


def random_e4e(g: Generator, units=None, seed=0):
    """A random ``Encoder4Editing`` for ``g`` (``units`` None: e4e's full-size IR-SE50), with
    BatchNorm statistics and PReLU slopes off their init values."""
    torch.manual_seed(seed)
    net = Encoder4Editing(units, g.n_latent, g.style_dim)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.8, 1.2)
                m.bias.uniform_(-0.1, 0.1)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
            elif isinstance(m, torch.nn.PReLU):
                m.weight.uniform_(0.1, 0.4)
    net.latent_avg = g.w_avg.expand(g.n_latent, -1).clone().to(net.latent_avg)
    return net.eval().requires_grad_(False)


def write_e4e_pt(encoder, g: Generator, path: str, mark_tiny: bool = True) -> str:
    """``{'state_dict': encoder.* + decoder.*, 'latent_avg': [n_latent, D], 'opts'}`` as in ``e4e_ffhq_encode.pt``."""
    _no_overwrite(path)
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    state.update({f"decoder.{k}": v for k, v in g.state_dict().items()})
    opts = {"encoder_type": "Encoder4Editing", "stylegan_size": g.size, "start_from_latent_avg": True, "dataset_type": "ffhq_encode"}
    ckpt = {"state_dict": state, "latent_avg": encoder.latent_avg.clone(), "opts": opts}
    if mark_tiny:
        ckpt[TINY_MARK] = True
    torch.save(ckpt, path)
    return path


def _write_tiny_e4e(path: str) -> str:
    g = tiny_generator()
    return write_e4e_pt(tiny_e4e(g), g, path)


# ---------------------------------------------------------------------------------------------
# StyleCLIP mappers and the face parser


def write_mapper_pt(path: str, description: str = "purple hair", seed: int = 0) -> str:
    """A StyleCLIP LevelsMapper checkpoint in the official layout (``state_dict`` with ``mapper.*``
    and the ``decoder.*`` generator, ``opts``), sized for the tiny generator."""
    from ..models.mapper import build_mapper

    _no_overwrite(path)
    g = tiny_generator()
    torch.manual_seed(seed)
    mapper = build_mapper("LevelsMapper", latent_dim=g.style_dim)
    sd = {f"mapper.{k}": v for k, v in mapper.net.state_dict().items()}
    sd.update({f"decoder.{k}": v for k, v in g.state_dict().items()})
    opts = {"description": description, "mapper_type": "LevelsMapper", "no_coarse_mapper": False, "no_medium_mapper": False,
            "no_fine_mapper": False, "stylegan_size": g.size, "work_in_stylespace": False, TINY_MARK: True}
    torch.save({"state_dict": sd, "opts": opts}, path)
    return path


def write_face_parser(path: str, seed: int = 0) -> str:
    """A small random BiSeNet under the release's key names (narrow widths)."""
    from ..models.face_parser import BiSeNet

    _no_overwrite(path)
    torch.manual_seed(seed)
    net = BiSeNet(widths=(8, 8, 16, 16), head=8, fuse=16)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 1.5)
    torch.save(net.state_dict(), path)
    return path


# ---------------------------------------------------------------------------------------------
# CLIP and ArcFace (text edits)

TINY_CLIP = {"embed_dim": 32, "vision_width": 64, "vision_layers": 1, "text_width": 64, "text_layers": 1}


def write_openai_clip(path: str, seed: int = 0) -> str:
    """A tiny random CLIP saved as OpenAI saved ``ViT-B-32.pt``: a traced TorchScript model in
    OpenAI's key layout with half-precision weights and the ``input_resolution`` /
    ``context_length`` / ``vocab_size`` tensors. Patch 32 on 224px images and the real BPE
    vocabulary (49408 tokens, so the bundled tokenizer works); widths of 64 (one attention head,
    open_clip infers heads as width/64) and one layer per tower. About 7 MB, almost all of it
    the token embedding."""
    import warnings

    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    _no_overwrite(path)
    c = TINY_CLIP
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = CLIP(
            c["embed_dim"],
            CLIPVisionCfg(layers=c["vision_layers"], width=c["vision_width"], patch_size=32, image_size=224),
            CLIPTextCfg(context_length=77, vocab_size=49408, width=c["text_width"], heads=1, layers=c["text_layers"]),
            quick_gelu=True,
        ).eval()
    for name, value in (("input_resolution", 224), ("context_length", 77), ("vocab_size", 49408), (TINY_MARK, 1)):
        net.__dict__.pop(name, None)  # open_clip keeps the first two as plain ints; OpenAI's archive has tensors
        net.register_buffer(name, torch.tensor(value))
    image, text = torch.zeros(1, 3, 224, 224), torch.zeros(1, 77, dtype=torch.long)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation notices
        traced = torch.jit.trace_module(net, {"forward": (image, text), "encode_image": (image,), "encode_text": (text,)})
        traced.half()
        traced.save(path)
    return path


def tiny_arcface_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """An ArcFace IR-SE backbone with four units (112 -> 7 px like IR-SE50) and 64-d embeddings,
    random weights and batch-norm statistics, under the official key names."""
    from ..models.irse import ArcFaceBackbone

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = ArcFaceBackbone([(16, 16, 2), (16, 24, 2), (24, 32, 2), (32, 48, 2)], embedding=64)
        state = net.state_dict()
        for key, value in state.items():
            if key.endswith("running_var"):
                value.uniform_(0.5, 1.5)
            elif key.endswith("running_mean") or (key.endswith(".bias") and value.is_floating_point()):
                value.normal_(0, 0.1)
    return state


def write_arcface_pth(path: str, seed: int = 0) -> str:
    """A plain state dict, as ``model_ir_se50.pth`` of the pSp/e4e release."""
    _no_overwrite(path)
    torch.save({**tiny_arcface_state(seed), TINY_MARK: torch.tensor(1)}, path)
    return path


def write_fs3_npy(path: str, seed: int = 0) -> str:
    """A stand-in for the official global-directions ``fs3.npy``: random unit rows, one per conv
    channel of the tiny generator, as wide as the tiny CLIP's embedding (a plain NumPy array)."""
    _no_overwrite(path)
    rows = np.random.RandomState(seed).randn(num_conv_channels(tiny_generator()), TINY_CLIP["embed_dim"])
    np.save(path, (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32))
    return path


def random_lpips(net: str = "alex", seed: int = 0):
    """Full-size LPIPS-``net`` on He-initialised random backbone weights and random non-negative
    heads: a real distance (0 only for equal images), though not the trained one."""
    from ..models.lpips import LPIPS

    lp = LPIPS(net)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in lp.net:
            if isinstance(m, torch.nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2 / m.weight[0].numel()) ** 0.5)
                m.bias.zero_()
        for h in lp.heads:
            h.copy_(torch.rand(h.shape, generator=gen))
    return lp


def write_lpips_backbone(path: str, net: str = "alex", seed: int = 0) -> str:
    """A random-weight backbone in torchvision's layout (``features.*``) for LPIPS-``net``. The
    architecture is fixed, so it is real-size (AlexNet about 10 MB, VGG16 about 59 MB)."""
    from ..models.lpips import features

    _no_overwrite(path)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        state = {f"features.{k}": v for k, v in features(net).state_dict().items()}
    torch.save({**state, TINY_MARK: torch.tensor(1)}, path)
    return path


# ---------------------------------------------------------------------------------------------
# models folder

# model kind -> (ComfyUI models subfolder, official file name, writer(path))
WRITERS: dict[str, tuple[str, str, callable]] = {
    "generator": ("stylegan", "stylegan2-ffhq-config-f.pt", lambda path: write_rosinality_pt(tiny_generator(), path)),
    "generator_sg3_t": ("stylegan", "stylegan3-t-ffhq-1024x1024.pkl", lambda path: write_sg3_pkl(tiny_stylegan3("t"), path)),
    "mapper": ("styleclip_mappers", "purple_hair.pt", write_mapper_pt),
    "face_parser": ("face_parsing", "79999_iter.pth", write_face_parser),
    "e4e": ("e4e", "e4e_ffhq_encode.pt", _write_tiny_e4e),
    "clip": ("openclip", "ViT-B-32.pt", write_openai_clip),
    "arcface": ("arcface", "model_ir_se50.pth", write_arcface_pth),
    "fs3": ("styleclip_global", "fs3.npy", write_fs3_npy),
    "lpips_alex": ("lpips", "alexnet-owt-7be5be79.pth", lambda path: write_lpips_backbone(path, "alex")),
    "lpips_vgg": ("lpips", "vgg16-397923af.pth", lambda path: write_lpips_backbone(path, "vgg")),
}


def write_models_folder(models_dir: str, kinds=None) -> list[str]:
    """Write every tiny model (or those of ``kinds``) under ``models_dir``; skip files that exist."""
    written = []
    for kind, (folder, filename, writer) in WRITERS.items():
        if kinds and kind not in kinds:
            continue
        path = os.path.join(models_dir, folder, filename)
        if os.path.exists(path):
            continue
        writer(path)
        written.append(path)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write tiny random-weight stand-ins for the official models (never overwrites).")
    parser.add_argument("--models-dir", required=True, help="ComfyUI's models folder")
    args = parser.parse_args(argv)
    for path in write_models_folder(args.models_dir):
        print("wrote", path)


if __name__ == "__main__":
    main()
