"""Read NVIDIA StyleGAN2 pickles without executing anything they contain.

Two formats exist:
* stylegan2-ada-pytorch: ``{'G', 'D', 'G_ema', ...}`` of ``torch_utils.persistence`` objects,
  each pickled as ``_reconstruct_persistent_obj(meta)`` with the module's source code and its
  ``__dict__`` (``_parameters``, ``_buffers``, ``_modules``) in ``meta``;
* TensorFlow StyleGAN2 (``stylegan2-ffhq-config-f.pkl``): a tuple ``(G, D, Gs)`` of
  ``dnnlib.tflib.network.Network`` objects whose state lists ``(name, numpy array)`` variables.

The unpickler resolves only an allow-list of tensor/array rebuild functions and containers.
NVIDIA's own classes and functions are replaced by inert records that keep their arguments;
any other global is also replaced by an inert record and never imported, so no source code
embedded in the file and no function it names is ever run.
"""
from __future__ import annotations

import codecs
import collections
import io
import pickle

import numpy as np
import torch

from ..errors import CheckpointError
from .files import library_message, sniff


class Persistent:
    """Stand-in for a ``torch_utils.persistence`` object: its class name and ``__dict__``."""

    def __init__(self, meta):
        meta = dict(meta)
        self.class_name = meta.get("class_name")
        self.state = dict(meta.get("state") or {})


class TFNetwork:
    """Stand-in for ``dnnlib.tflib.network.Network``: keeps the pickled state dict."""

    def __setstate__(self, state):
        self.state = dict(state)


class EasyDict(dict):
    """``dnnlib.EasyDict`` is a dict with attribute access; a dict is all we need."""


class Opaque:
    """Any global outside the allow-list: records what it was given, runs nothing."""

    def __init__(self, qualname):
        self.qualname = qualname

    def __call__(self, *args, **kwargs):
        obj = Opaque(self.qualname)
        obj.args = args
        return obj

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"<not loaded: {self.qualname}>"


def _load_storage_bytes(data: bytes):
    # A tensor inside a plain pickle carries its storage as a nested torch.save blob.
    return torch.load(io.BytesIO(data), weights_only=True)


def _rebuild_from_type_v2(func, new_type, args, state):
    return func(*args)


def _reconstructor(cls, base, state):
    obj = base.__new__(cls) if base is not object else object.__new__(cls)
    if base is not object:
        base.__init__(obj, state)
    return obj


_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): Persistent,
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("builtins", "object"): object,
    ("_codecs", "encode"): codecs.encode,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("torch", "Size"): torch.Size,
    ("torch", "Tensor"): torch.Tensor,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
try:
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy < 2
    from numpy.core import multiarray as _multiarray
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED[(_mod, "scalar")] = _multiarray.scalar


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file):
        super().__init__(file)
        self.opaque: set[str] = set()

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        self.opaque.add(f"{module}.{name}")
        return Opaque(f"{module}.{name}")


def read_pickle(path: str):
    with open(path, "rb") as f:
        unpickler = _RestrictedUnpickler(f)
        try:
            data = unpickler.load()
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 -- a damaged pickle raises almost anything; nothing in it has run
            found = sniff(path) or f"a file that cannot be unpickled safely ({library_message(e)}); it may be truncated"
            raise CheckpointError(path, "an NVIDIA StyleGAN2 pickle", found) from None
    return data, unpickler.opaque


# ---------------------------------------------------------------------------------------------
# stylegan2-ada-pytorch -> flat G_ema state dict


def _module_state_dict(obj, prefix="") -> dict[str, torch.Tensor]:
    state = obj.state if isinstance(obj, Persistent) else getattr(obj, "__dict__", {})
    out = {}
    for group in ("_parameters", "_buffers"):
        for k, v in (state.get(group) or {}).items():
            if isinstance(v, torch.Tensor):
                out[prefix + k] = v.detach().float() if v.is_floating_point() else v.detach()
    for k, child in (state.get("_modules") or {}).items():
        if child is not None:
            out.update(_module_state_dict(child, prefix + k + "."))
    return out


def ada_state_dict(data, path: str) -> tuple[dict[str, torch.Tensor], dict]:
    """The ``G_ema`` state dict (NVIDIA key names) and its init kwargs."""
    if not isinstance(data, dict) or "G_ema" not in data:
        found = f"a dict with keys {sorted(map(str, data))[:8]}" if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(path, "a stylegan2-ada-pytorch pickle with a 'G_ema' network", found)
    g = data["G_ema"]
    if not isinstance(g, Persistent):
        raise CheckpointError(path, "'G_ema' to be a persistent torch module", repr(g))
    state = _module_state_dict(g)
    kwargs = dict(g.state.get("_init_kwargs") or {})
    return state, kwargs


# ---------------------------------------------------------------------------------------------
# TensorFlow StyleGAN2 -> NVIDIA ada key names (as StyleCLIP's legacy.py converts them)


def tf_variables(data, path: str) -> dict[str, np.ndarray]:
    """Variables of ``Gs`` (the moving-average generator) and its components, '/'-joined."""
    if not (isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data)):
        raise CheckpointError(path, "a TensorFlow StyleGAN2 pickle (G, D, Gs)", type(data).__name__)
    variables: dict[str, np.ndarray] = {}

    def collect(net, prefix):
        for name, value in net.state.get("variables", []):
            variables[prefix + name] = np.asarray(value)
        for comp_name, comp in (net.state.get("components") or {}).items():
            if isinstance(comp, TFNetwork):
                collect(comp, prefix + comp_name + "/")

    collect(data[2], "")
    return variables


def tf_to_ada(variables: dict[str, np.ndarray], path: str) -> dict[str, torch.Tensor]:
    # np.ascontiguousarray turns 0-d arrays into 1-d: keep the shape (noise_strength is [] in G_ema)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float().reshape(np.shape(a))  # noqa: E731
    out: dict[str, torch.Tensor] = {}
    i = 0
    while f"mapping/Dense{i}/weight" in variables:
        out[f"mapping.fc{i}.weight"] = t(variables[f"mapping/Dense{i}/weight"].T)
        out[f"mapping.fc{i}.bias"] = t(variables[f"mapping/Dense{i}/bias"])
        i += 1
    if "dlatent_avg" in variables:
        out["mapping.w_avg"] = t(variables["dlatent_avg"])
    if "synthesis/4x4/Const/const" not in variables:
        raise CheckpointError(path, "TensorFlow variables 'synthesis/4x4/Const/const', 'mapping/Dense0/weight', ...", f"variables {sorted(variables)[:6]}")
    out["synthesis.b4.const"] = t(variables["synthesis/4x4/Const/const"][0])

    def layer(tf_prefix, ada_prefix, flip=False):
        w = variables[f"{tf_prefix}/weight"]
        if flip:
            w = w[::-1, ::-1]
        out[f"{ada_prefix}.weight"] = t(w.transpose(3, 2, 0, 1))
        out[f"{ada_prefix}.bias"] = t(variables[f"{tf_prefix}/bias"])
        out[f"{ada_prefix}.affine.weight"] = t(variables[f"{tf_prefix}/mod_weight"].T)
        out[f"{ada_prefix}.affine.bias"] = t(variables[f"{tf_prefix}/mod_bias"] + 1)
        if f"{tf_prefix}/noise_strength" in variables:
            out[f"{ada_prefix}.noise_strength"] = t(np.asarray(variables[f"{tf_prefix}/noise_strength"]).reshape(()))

    layer("synthesis/4x4/Conv", "synthesis.b4.conv1")
    layer("synthesis/4x4/ToRGB", "synthesis.b4.torgb")
    # TF noise inputs noise0, noise1, ... are in layer order: b4.conv1, b8.conv0, b8.conv1, ...
    noisy_layers = ["synthesis.b4.conv1"]
    res = 8
    while f"synthesis/{res}x{res}/Conv0_up/weight" in variables:
        layer(f"synthesis/{res}x{res}/Conv0_up", f"synthesis.b{res}.conv0", flip=True)
        layer(f"synthesis/{res}x{res}/Conv1", f"synthesis.b{res}.conv1")
        layer(f"synthesis/{res}x{res}/ToRGB", f"synthesis.b{res}.torgb")
        noisy_layers += [f"synthesis.b{res}.conv0", f"synthesis.b{res}.conv1"]
        res *= 2
    names = noisy_layers
    for j, name in enumerate(names):
        key = f"synthesis/noise{j}"
        if key in variables:
            out[f"{name}.noise_const"] = t(variables[key][0, 0])
    return out


# ---------------------------------------------------------------------------------------------
# NVIDIA ada key names -> rosinality g_ema


def ada_to_rosinality(ada: dict[str, torch.Tensor], path: str) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Convert a G_ema state dict (NVIDIA names) to rosinality's ``g_ema`` keys and ``latent_avg``.

    The FIR filter buffers are constants that rosinality keeps in its own layout; the caller's
    ``Generator`` creates them, so they are not produced here.
    """
    if any(k.startswith("mapping.embed") for k in ada):
        raise CheckpointError(path, "an unconditional generator", "a class-conditional generator (mapping.embed); conditional models are not supported")
    if "synthesis.b4.const" not in ada or "mapping.fc0.weight" not in ada:
        raise CheckpointError(path, "a StyleGAN2 G_ema (keys 'synthesis.b4.const', 'mapping.fc0.weight') or a StyleGAN3 one "
                              "('synthesis.input.freqs', 'mapping.fc0.weight')", f"keys {sorted(ada)[:6]}")
    g: dict[str, torch.Tensor] = {}
    i = 0
    while f"mapping.fc{i}.weight" in ada:
        g[f"style.{i + 1}.weight"] = ada[f"mapping.fc{i}.weight"]
        g[f"style.{i + 1}.bias"] = ada[f"mapping.fc{i}.bias"]
        i += 1
    g["input.input"] = ada["synthesis.b4.const"][None]

    def conv(src, dst, noise_index):
        g[f"{dst}.conv.weight"] = ada[f"{src}.weight"][None]
        g[f"{dst}.conv.modulation.weight"] = ada[f"{src}.affine.weight"]
        g[f"{dst}.conv.modulation.bias"] = ada[f"{src}.affine.bias"]
        g[f"{dst}.noise.weight"] = ada[f"{src}.noise_strength"].reshape(1)
        g[f"{dst}.activate.bias"] = ada[f"{src}.bias"]
        if f"{src}.noise_const" in ada:
            g[f"noises.noise_{noise_index}"] = ada[f"{src}.noise_const"][None, None]

    def torgb(src, dst):
        g[f"{dst}.conv.weight"] = ada[f"{src}.weight"][None]
        g[f"{dst}.conv.modulation.weight"] = ada[f"{src}.affine.weight"]
        g[f"{dst}.conv.modulation.bias"] = ada[f"{src}.affine.bias"]
        g[f"{dst}.bias"] = ada[f"{src}.bias"].reshape(1, -1, 1, 1)

    conv("synthesis.b4.conv1", "conv1", 0)
    torgb("synthesis.b4.torgb", "to_rgb1")
    k, res = 0, 8
    while f"synthesis.b{res}.conv0.weight" in ada:
        conv(f"synthesis.b{res}.conv0", f"convs.{2 * k}", 1 + 2 * k)
        conv(f"synthesis.b{res}.conv1", f"convs.{2 * k + 1}", 2 + 2 * k)
        torgb(f"synthesis.b{res}.torgb", f"to_rgbs.{k}")
        k, res = k + 1, res * 2
    return g, ada.get("mapping.w_avg")
