"""The TensorFlow StyleGAN2 pickle reader (stylegan2-ffhq-config-f.pkl) checked against facts written
independently of the pack's own writer (tiny_models.write_tf_pkl):

* variable names and shapes from NVIDIA's TF code, NVlabs/stylegan2 (commit bf0fe0b):
  `training/networks_stylegan2.py` and `dnnlib/tflib/network.py` (line numbers cited below);
* the numerical correspondence TF -> ada of SPEC 7.2 (stylegan2-ada-pytorch `legacy.py`
  convert_tf_generator), applied here in the TF direction to the weights of fixtures/ada_to_rosinality,
  pickled as NVIDIA's `Network.__getstate__` does, read back by load_generator and rendered against the
  fixture's NVIDIA outputs.
"""
import pickle
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch

from conftest import load_fixture, load_manifest, strip
from styleclip_core.formats import nvidia_pickle
from styleclip_core.formats.generator_files import load_generator


def official_tf_variables(resolution=1024, fmap_base=16 << 10, fmap_max=512, latent_size=512, dlatent_size=512,
                          mapping_layers=8, mapping_fmaps=512, num_channels=3):
    """(Gs own, mapping, synthesis) variable name -> shape, in creation order, as NVIDIA's TF code makes
    them (G_main + G_mapping + G_synthesis_stylegan2, architecture 'skip', label_size 0). Defaults =
    config-f at 1024 (networks_stylegan2.py defaults; run_training.py leaves config-f's fmap_base alone)."""
    log2 = int(np.log2(resolution))
    nf = lambda stage: int(np.clip(int(fmap_base / (2.0 ** stage)), 1, fmap_max))  # noqa: E731  L436 (fmap_decay 1, fmap_min 1)
    # G_main L193-194: own variables 'lod' (scalar) and 'dlatent_avg' [dlatent_size].
    gs = OrderedDict([("lod", ()), ("dlatent_avg", (dlatent_size,))])
    # G_mapping L288-291: scope 'Dense%d'; dense_layer L41-46 -> get_weight L22-36 'weight' [in, out];
    # apply_bias_act L66-67 'bias' [out]. No 'LabelConcat' (label_size 0, L276).
    mapping = OrderedDict()
    fin = latent_size
    for i in range(mapping_layers):
        fout = dlatent_size if i == mapping_layers - 1 else mapping_fmaps
        mapping[f"Dense{i}/weight"] = (fin, fout)
        mapping[f"Dense{i}/bias"] = (fout,)
        fin = fout
    # G_synthesis_stylegan2 L417-510 (no 'lod' in this one).
    syn = OrderedDict()
    num_layers = log2 * 2 - 2  # L439
    for j in range(num_layers - 1):  # L447-451: 'noise%d' [1, 1, 2**res, 2**res], res = (j + 5) // 2
        r = 2 ** ((j + 5) // 2)
        syn[f"noise{j}"] = (1, 1, r, r)

    def modconv(scope, cin, cout, k, noise=True):
        # modulated_conv2d_layer L89-99: 'weight' [k, k, in, out], 'mod_weight' [dlatent, in] (dense_layer),
        # 'mod_bias' [in] (apply_bias_act, +1 at run time); layer() L454-462 adds 'noise_strength' [] and the
        # outer apply_bias_act 'bias' [out]; torgb L479-482 has no noise and its own 'bias' [num_channels].
        syn[f"{scope}/weight"] = (k, k, cin, cout)
        syn[f"{scope}/mod_weight"] = (dlatent_size, cin)
        syn[f"{scope}/mod_bias"] = (cin,)
        if noise:
            syn[f"{scope}/noise_strength"] = ()
        syn[f"{scope}/bias"] = (cout,)

    syn["4x4/Const/const"] = (1, nf(1), 4, 4)  # L486-488
    modconv("4x4/Conv", nf(1), nf(1), 3)  # L490-491
    modconv("4x4/ToRGB", nf(1), num_channels, 1, noise=False)  # L492-493 (skip)
    for res in range(3, log2 + 1):  # L496-502: scope '%dx%d', block() L465-470, torgb inside the scope
        r = 2 ** res
        modconv(f"{r}x{r}/Conv0_up", nf(res - 2), nf(res - 1), 3)
        modconv(f"{r}x{r}/Conv1", nf(res - 1), nf(res - 1), 3)
        modconv(f"{r}x{r}/ToRGB", nf(res - 1), num_channels, 1, noise=False)
    return gs, mapping, syn


def flat(gs, mapping, syn):
    """legacy.py _collect_tf_params: own variables, then each component's under '<component key>/'."""
    out = dict(gs)
    out.update({"mapping/" + k: v for k, v in mapping.items()})
    out.update({"synthesis/" + k: v for k, v in syn.items()})
    return out


class Network:
    """Pickles as dnnlib.tflib.network.Network: NEWOBJ of that global + BUILD with the state dict that
    network.py L255-265 __getstate__ returns (variables = [(name relative to the scope, ndarray)], L181/L264;
    components = dict of sub-Networks keyed 'mapping'/'synthesis', L261, made in G_main L188-191)."""

    def __init__(self, name, variables, components=None, static_kwargs=None, func="G_main"):
        self.state = {
            "version": 4, "name": name, "static_kwargs": dict(static_kwargs or {}),
            "components": dict(components or {}),
            "build_module_src": "raise RuntimeError('build source must never be executed')\n",
            "build_func_name": func, "variables": list(variables.items()),
        }

    def __getstate__(self):
        return self.state


@pytest.fixture
def tf_network_class(monkeypatch):
    """Make the test's Network picklable under NVIDIA's module path for the duration of a test."""
    for name in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setattr(Network, "__module__", "dnnlib.tflib.network")
    monkeypatch.setattr(sys.modules["dnnlib.tflib.network"], "Network", Network, raising=False)
    return Network


def write_official_pkl(path, gs_vars, mapping_vars, syn_vars, training_g=None):
    """(G, D, Gs) as NVIDIA's pretrained pickles; G (training copy) may differ from Gs."""
    def g_net(name, vals):
        own, mp, sy = vals
        return Network(name, own, {
            "mapping": Network("G_mapping", mp, func="G_mapping"),
            "synthesis": Network("G_synthesis", sy, func="G_synthesis_stylegan2"),
        }, {"resolution": 0})

    gs = g_net("Gs", (gs_vars, mapping_vars, syn_vars))
    g = g_net("G", training_g or (gs_vars, mapping_vars, syn_vars))
    d = Network("D", {"4x4/Conv/weight": np.ones((3, 3, 4, 4), np.float32)}, func="D_stylegan2")
    with open(path, "wb") as f:
        pickle.dump((g, d, gs), f, protocol=3)
    return path


# ---------------------------------------------------------------------------------------------
# 1. names and shapes of the official network


def test_official_config_f_names_and_shapes_are_read(tmp_path, tf_network_class):
    """Zero-valued variables with the exact names/shapes of NVIDIA's config-f 1024 network load into
    the ada layout of the G_ema manifest and the rosinality layout of the 1024 manifest."""
    gs, mapping, syn = official_tf_variables()
    names = flat(gs, mapping, syn)
    # facts of the official network, counted from the code above
    assert sum(k.startswith("synthesis/noise") for k in names) == 17  # num_layers - 1 = 18 - 1
    assert names["synthesis/1024x1024/Conv1/weight"] == (3, 3, 32, 32) and names["synthesis/64x64/Conv0_up/weight"] == (3, 3, 512, 512)
    assert names["synthesis/128x128/Conv0_up/weight"] == (3, 3, 512, 256) and names["synthesis/4x4/ToRGB/weight"] == (1, 1, 512, 3)
    assert names["mapping/Dense0/weight"] == (512, 512) and names["dlatent_avg"] == (512,)
    # the manifest's independently recorded legacy.py names are all among them
    manifest = load_manifest("nvidia_ada_G_ema_ffhq1024")
    recorded = {v["tf_variable"] for v in manifest["to_rosinality"].values() if v.get("tf_variable")}
    assert recorded == set(names) - {"lod"}

    z = lambda vs: OrderedDict((k, np.zeros(s, np.float32)) for k, s in vs.items())  # noqa: E731
    path = write_official_pkl(str(tmp_path / "stylegan2-ffhq-config-f.pkl"), z(gs), z(mapping), z(syn))
    data, opaque = nvidia_pickle.read_pickle(path)
    assert not opaque  # only Network and numpy globals
    variables = nvidia_pickle.tf_variables(data, path)
    assert {k: tuple(v.shape) for k, v in variables.items()} == names
    ada = nvidia_pickle.tf_to_ada(variables, path)
    expected = {k: tuple(v["shape"]) for k, v in manifest["keys"].items() if not k.endswith("resample_filter")}
    assert {k: tuple(v.shape) for k, v in ada.items()} == expected
    ros, w_avg = nvidia_pickle.ada_to_rosinality(ada, path)
    ros_manifest = load_manifest("rosinality_generator_1024_cm2")["keys"]
    kernels = set(manifest["rosinality_keys_without_ada_source"])
    assert {k: tuple(v.shape) for k, v in ros.items()} == {k: tuple(v["shape"]) for k, v in ros_manifest.items() if k not in kernels}
    assert w_avg.shape == (512,)


# ---------------------------------------------------------------------------------------------
# 2. numbers: the ada fixture's weights in TF layout


def ada_to_tf(ada, cfg):
    """TF variables from a G_ema state dict, by the published correspondence (SPEC 7.2, legacy.py read
    in reverse), written here without nvidia_pickle/tiny_models:
    * dense: TF [in, out] = ada [out, in].T; both store raw values (TF multiplies by lrmul/sqrt(in) at run
      time in get_weight L22-36 and the bias by lrmul in apply_bias_act L67; ada by weight_gain/bias_gain);
    * conv: TF [k, k, in, out] = ada [out, in, k, k].transpose(2, 3, 1, 0); the up-sampling conv
      (Conv0_up) is additionally flipped in both spatial axes;
    * mod_bias = affine.bias - 1 (TF adds the 1 at run time, L99; ada initialises the bias to 1);
    * const [1, C, 4, 4] = ada const[None]; noise{j} [1, 1, R, R] = noise_const[None, None] with
      j = 0 for 4x4/Conv, res*2-5 for Conv0_up, res*2-4 for Conv1 (L455, L467-470)."""
    n = lambda t: t.detach().numpy().astype(np.float32)  # noqa: E731
    gs = OrderedDict([("lod", np.float32(0)), ("dlatent_avg", n(ada["mapping.w_avg"]))])
    mapping = OrderedDict()
    for i in range(cfg["mapping_layers"]):
        mapping[f"Dense{i}/weight"] = np.ascontiguousarray(n(ada[f"mapping.fc{i}.weight"]).T)
        mapping[f"Dense{i}/bias"] = n(ada[f"mapping.fc{i}.bias"])
    syn = OrderedDict()
    log2 = int(np.log2(cfg["img_resolution"]))
    for j in range(log2 * 2 - 3):
        res = (j + 5) // 2
        r = 2 ** res
        src = "synthesis.b4.conv1" if j == 0 else f"synthesis.b{r}.conv{0 if j == res * 2 - 5 else 1}"
        syn[f"noise{j}"] = n(ada[f"{src}.noise_const"])[None, None]

    def modconv(scope, src, flip=False, noise=True):
        w = n(ada[f"{src}.weight"]).transpose(2, 3, 1, 0)
        syn[f"{scope}/weight"] = np.ascontiguousarray(w[::-1, ::-1] if flip else w)
        syn[f"{scope}/mod_weight"] = np.ascontiguousarray(n(ada[f"{src}.affine.weight"]).T)
        syn[f"{scope}/mod_bias"] = n(ada[f"{src}.affine.bias"]) - np.float32(1)
        if noise:
            syn[f"{scope}/noise_strength"] = np.float32(ada[f"{src}.noise_strength"].item())
        syn[f"{scope}/bias"] = n(ada[f"{src}.bias"])

    syn["4x4/Const/const"] = n(ada["synthesis.b4.const"])[None]
    modconv("4x4/Conv", "synthesis.b4.conv1")
    modconv("4x4/ToRGB", "synthesis.b4.torgb", noise=False)
    for res in range(3, log2 + 1):
        r = 2 ** res
        modconv(f"{r}x{r}/Conv0_up", f"synthesis.b{r}.conv0", flip=True)
        modconv(f"{r}x{r}/Conv1", f"synthesis.b{r}.conv1")
        modconv(f"{r}x{r}/ToRGB", f"synthesis.b{r}.torgb", noise=False)
    return gs, mapping, syn


@pytest.fixture(scope="module")
def ada_fixture():
    return load_fixture("ada_to_rosinality")


@torch.no_grad()
def test_fixture_weights_in_tf_layout_render_nvidia_images(tmp_path, tf_network_class, ada_fixture):
    T, meta = ada_fixture
    cfg, tol = meta["config"], meta["tolerance"]
    ada = strip(T, "ada.")
    gs, mapping, syn = ada_to_tf(ada, cfg)
    # the variables have exactly the official names and shapes for this configuration
    # (ada channel_base = 2 * TF fmap_base, SPEC 7.1)
    official = official_tf_variables(cfg["img_resolution"], cfg["channel_base"] // 2, cfg["channel_max"], cfg["z_dim"],
                                     cfg["w_dim"], cfg["mapping_layers"], cfg["w_dim"])
    for ours, theirs in zip((gs, mapping, syn), official):
        assert list(ours) == list(theirs) and all(np.shape(ours[k]) == theirs[k] for k in ours)
    # the training copy G differs: the reader must take Gs (the third entry, = G_ema)
    g_train = (gs, OrderedDict((k, v * 0 + 0.5) for k, v in mapping.items()), syn)
    path = write_official_pkl(str(tmp_path / "stylegan2-ffhq-config-f.pkl"), gs, mapping, syn, training_g=g_train)
    g = load_generator(path)
    assert g.size == cfg["img_resolution"] and g.n_latent == cfg["num_ws"] and g.has_w_avg
    torch.testing.assert_close(g.w_avg, T["ada.mapping.w_avg"], atol=0, rtol=0)
    close = lambda a, b: torch.testing.assert_close(a, b, atol=tol["atol"], rtol=tol["rtol"])  # noqa: E731
    ws = g.to_w_plus(g.mapping(T["in.z"]))
    close(ws, T["out.ada.ws"])
    ws_t = g.truncate(ws, 0.7, g.w_avg[None], cutoff=8)
    close(ws_t, T["out.ada.ws_trunc0.7_cutoff8"])
    for layer, s in zip(g.style_layers, g.styles(ws_t)):
        close(s, T[f"out.ada.S.{layer.name}"])
    img = g(T["out.ada.ws_trunc0.7_cutoff8"])
    close(img, T["out.ada.image"])
    diff = (img - T["out.ada.image"]).abs().max().item()
    print(f"TF-layout fixture image max |diff| {diff:.2e} (atol {tol['atol']}, |img| max {T['out.ada.image'].abs().max():.2f})")
