"""Directions in every space (edits/directions.py): exact W -> W+ -> StyleSpace conversion, combining
across spaces, applying, files (ours and single arrays of other tools); GANSpace against an
independent PCA; the SeFa, GANSpace, Load Direction and Apply Direction nodes."""
import math
import os

import numpy as np
import pytest
import torch

from eigen_bounds import U32, U64, aligned_distance, distance_bound, sin_theta_bound
from styleclip_core.edits import factorization as fz
from styleclip_core.edits.directions import Direction, add_to_styles
from styleclip_core.errors import CheckpointError
from styleclip_core.formats import direction_files
from styleclip_core.formats.files import save_atomic
from styleclip_core.formats.tiny_models import tiny_generator
from styleclip_core.models.latents import Latents, sample_latents


@pytest.fixture(scope="module")
def g():
    return tiny_generator(size=32)  # W+ [8, 64]; StyleSpace widths 32 ... 16


def _codes(g, n=2, seed=1):
    return sample_latents(g, n, seed, 0.7)


def _rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ---- conversion -----------------------------------------------------------------------------


def test_w_to_stylespace_is_the_linear_part_of_each_affine_map(g):
    """s(w + alpha v) - s(w) = alpha A v for every layer's affine map s = A w + b: the bias cancels.
    In float64 both sides agree to their rounding: each affine evaluation has error at most
    gamma_(D+2) (|A| |w| + |b|) (D products and the bias; A = scale W formed first), three of them."""
    v = _rand(g.style_dim, seed=2)
    w = _codes(g).w_plus.double()
    s_dir = Direction("w", [v]).to_space("s", g)
    assert s_dir.space == "s" and [d.shape[0] for d in s_dir.deltas] == [l.channels for l in g.style_layers]
    gamma = (g.style_dim + 2) * U64 / (1 - (g.style_dim + 2) * U64)
    alpha = 2.5
    for layer, delta in zip(g.style_layers, s_dir.deltas):
        mod = g._modconv(layer).modulation
        A, b = mod.weight.double() * mod.scale, mod.bias.double() * mod.lr_mul
        x0, x1 = w[:, layer.w_index], w[:, layer.w_index] + alpha * v.double()
        change = (x1 @ A.T + b) - (x0 @ A.T + b)
        bound = gamma * (x1.abs() @ A.abs().T + x0.abs() @ A.abs().T + alpha * v.double().abs() @ A.abs().T + 2 * b.abs())
        assert bool(((change - alpha * delta).abs() <= bound).all()), layer.name
    # W+ rows: each layer takes its own row's vector
    rows = _rand(g.n_latent, g.style_dim, seed=3)
    from_rows = Direction("w+", [rows]).to_space("s", g)
    for layer, delta in zip(g.style_layers, from_rows.deltas):
        expected = Direction("w", [rows[layer.w_index]]).to_space("s", g).deltas[layer.index]
        assert torch.equal(delta, expected)
    assert torch.equal(Direction("w", [v]).to_space("w+", g).deltas[0], v.expand(g.n_latent, -1))


def test_w_edit_in_w_plus_equals_the_converted_edit_in_stylespace(g):
    """A W direction applied to W+ codes then turned into styles (float32, as rendering does) equals
    the codes' styles plus the converted StyleSpace direction, within float32 rounding: the edited
    row is rounded once (u |w'|), each side's affine map has error gamma_(D+2) (|A| |x| + |b|), and the
    StyleSpace sum is rounded once to float32 (u |s'|)."""
    latents = _codes(g, 3)
    direction = Direction("w", [_rand(g.style_dim, seed=4)])
    alphas = [-3.0, 0.5, 4.0]
    edited_w, _ = direction.apply(g, latents, alphas)
    assert edited_w.space == "w+"
    edited_s, originals = direction.apply(g, Latents(styles=latents.to_styles(g)), alphas)
    assert edited_s.space == "s" and originals.space == "s"
    gamma = (g.style_dim + 2) * U32 / (1 - (g.style_dim + 2) * U32)
    w_edit = edited_w.w_plus.double()
    w_orig = latents.w_plus.double().repeat_interleave(len(alphas), 0)
    with torch.no_grad():
        via_w = g.styles(edited_w.w_plus)
    for layer, a, b in zip(g.style_layers, via_w, edited_s.styles):
        mod = g._modconv(layer).modulation
        absA, absb = (mod.weight.double() * mod.scale).abs(), (mod.bias.double() * mod.lr_mul).abs()
        x1, x0 = w_edit[:, layer.w_index].abs(), w_orig[:, layer.w_index].abs()
        bound = U32 * x1 @ absA.T + gamma * (x1 @ absA.T + absb) + gamma * (x0 @ absA.T + absb) + U32 * b.double().abs()
        diff = (a.double() - b.double()).abs()
        assert bool((diff <= bound).all()), f"{layer.name}: {float((diff / bound).max()):.3f} of the bound"


def test_stylespace_to_w_is_an_error(g):
    s_dir = Direction("w", [_rand(g.style_dim)]).to_space("s", g)
    with pytest.raises(ValueError, match="StyleSpace direction cannot be turned into a W one"):
        s_dir.to_space("w", g)
    with pytest.raises(ValueError, match="cannot be turned into a W\\+ one"):
        s_dir.to_space("w+", g)
    with pytest.raises(ValueError, match="W\\+ direction cannot be turned into a W one"):
        Direction("w+", [_rand(g.n_latent, g.style_dim)]).to_space("w", g)
    with pytest.raises(ValueError, match="needs the generator"):
        Direction("w", [_rand(g.style_dim)]).to_space("s")


def test_combine_across_spaces(g):
    v, rows = _rand(g.style_dim, seed=5), _rand(g.n_latent, g.style_dim, seed=6)
    a, b = Direction("w", [v]), Direction("w+", [rows])
    mix = Direction.combine([a, b], [0.5, -2.0], g)
    assert mix.space == "w+"
    assert torch.equal(mix.deltas[0], 0.5 * v.double().expand(g.n_latent, -1) + (-2.0) * rows.double())  # 0 + x + y: the same IEEE operations
    with pytest.raises(ValueError, match="needs the generator"):
        Direction.combine([a, b], [1.0, 1.0])  # W -> W+ needs the row count
    s = Direction("w", [_rand(g.style_dim, seed=7)]).to_space("s", g)
    mixed = Direction.combine([a, s], [1.0, 3.0], g)
    assert mixed.space == "s"
    a_s = a.to_space("s", g)
    for m, x, y in zip(mixed.deltas, a_s.deltas, s.deltas):
        assert torch.equal(m, 1.0 * x.double() + 3.0 * y.double())
    with pytest.raises(ValueError, match="different generators"):
        Direction.combine([a, Direction("w", [_rand(32)])], [1.0, 1.0], g)


def test_check_refuses_another_generators_direction(g):
    other = tiny_generator(size=16, style_dim=32)
    latents = _codes(other, 1)
    for d in (Direction("w", [_rand(g.style_dim)]), Direction("w+", [_rand(g.n_latent, g.style_dim)]),
              Direction("w", [_rand(g.style_dim)]).to_space("s", g)):
        with pytest.raises(ValueError, match="made for another generator"):
            d.check(other)
        with pytest.raises(ValueError, match="made for another generator"):
            d.apply(other, latents, [1.0])
    with pytest.raises(ValueError, match="made for another generator"):  # W+ rows of a generator of the same style_dim
        Direction("w+", [_rand(6, g.style_dim)]).check(g)


def test_apply_is_image_major_and_leaves_other_rows(g):
    latents = _codes(g, 2)
    rows = torch.zeros(g.n_latent, g.style_dim)
    rows[2:5] = _rand(3, g.style_dim, seed=8)
    alphas = [-1.0, 0.0, 2.0]
    edited, originals = Direction("w+", [rows]).apply(g, latents, alphas)
    assert edited.batch_size == originals.batch_size == 6
    for face in range(2):
        for k, alpha in enumerate(alphas):
            expected = (latents.w_plus[face].double() + alpha * rows.double()).float()  # float64 sum, rounded once
            assert torch.equal(edited.w_plus[face * 3 + k], expected)
            assert torch.equal(edited.w_plus[face * 3 + k, 5:], latents.w_plus[face, 5:])
            assert torch.equal(originals.w_plus[face * 3 + k], latents.w_plus[face])
    # on StyleSpace codes the same direction edits in StyleSpace, through its exact conversion
    styles = latents.to_styles(g)
    edited_s, originals_s = Direction("w+", [rows]).apply(g, Latents(styles=styles), alphas)
    converted = add_to_styles(styles, Direction("w+", [rows]).to_space("s", g), alphas)
    assert all(torch.equal(x, y) for x, y in zip(edited_s.styles, converted))
    assert all(torch.equal(x, y.repeat_interleave(3, 0)) for x, y in zip(originals_s.styles, styles))
    unaffected = [l.index for l in g.style_layers if l.w_index not in (2, 3, 4)]
    for i in unaffected:
        assert torch.equal(edited_s.styles[i], styles[i].repeat_interleave(3, 0))


# ---- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("space", ["w", "w+", "s"])
def test_save_load_keeps_the_space(g, tmp_path, space):
    d = Direction("w", [_rand(g.style_dim, dtype=torch.float64)], {"made_by": "test"})
    d = d.to_space(space, g)
    path = str(tmp_path / "d.safetensors")
    d.save(path)
    loaded = Direction.load(path)
    assert loaded.space == space and loaded.info == d.info
    assert len(loaded.deltas) == len(d.deltas) and all(torch.equal(x, y) for x, y in zip(loaded.deltas, d.deltas))


def test_old_files_load_as_stylespace(g, tmp_path):
    deltas = Direction("w", [_rand(g.style_dim)]).to_space("s", g).deltas
    tensors = {f"delta.{i}": t.float() for i, t in enumerate(deltas)}
    old = save_atomic(tensors, str(tmp_path / "old.safetensors"), {"format": direction_files.OLD_FORMAT, "info": '{"target": "smile"}'})
    bare = save_atomic(tensors, str(tmp_path / "bare.safetensors"))
    for path in (old, bare):
        d = Direction.load(path)
        assert d.space == "s" and all(torch.equal(x, tensors[f"delta.{i}"]) for i, x in enumerate(d.deltas))
        d.check(g)
    assert Direction.load(old).info == {"target": "smile"}


def _write(path, kind, array):
    if kind == "npy":
        np.save(path, array)
    elif kind == "pt":
        torch.save(array, path)
    else:
        save_atomic({"boundary": array}, path)
    return path


@pytest.mark.parametrize("kind", ["npy", "pt", "safetensors"])
def test_single_arrays_load_as_w_or_w_plus(g, tmp_path, kind):
    ext = {"npy": ".npy", "pt": ".pth", "safetensors": ".safetensors"}[kind]
    as_input = (lambda a: a) if kind == "npy" else torch.from_numpy
    boundary = np.random.RandomState(0).randn(1, g.style_dim)  # InterFaceGAN: [1, 512] float64
    boundary /= np.linalg.norm(boundary)
    d = Direction.load(_write(str(tmp_path / f"b{ext}"), kind, as_input(boundary)))
    assert d.space == "w" and d.deltas[0].dtype == torch.float64 and torch.equal(d.deltas[0], torch.from_numpy(boundary[0]))
    assert d.info["file"] == f"b{ext}" and "[1, 64]" in d.describe()
    flat = Direction.load(_write(str(tmp_path / f"f{ext}"), kind, as_input(boundary[0].astype(np.float32))))
    assert flat.space == "w" and flat.deltas[0].dtype == torch.float32
    rows = np.zeros((g.n_latent, g.style_dim), np.float32)
    rows[1:3] = 1.0
    wp = Direction.load(_write(str(tmp_path / f"r{ext}"), kind, as_input(rows)))
    assert wp.space == "w+" and torch.equal(wp.deltas[0], torch.from_numpy(rows))
    edited, _ = wp.apply(g, _codes(g, 1), [1.0])
    assert torch.equal(edited.w_plus[0, 3:], _codes(g, 1).w_plus[0, 3:])
    for bad, found in [(np.zeros((3, g.style_dim), np.float32), "[3, 64]"), (np.zeros((1, g.n_latent, g.style_dim), np.float32), "[1, 8, 64]"),
                       (np.zeros((64, 64), np.float32), "square matrix"), (np.zeros((0,), np.float32), "[0]")]:
        with pytest.raises(CheckpointError, match=r"bad" + ext.replace(".", r"\.") + r": expected a W direction \[D\] or \[1, D\].*" + found.replace("[", r"\[").replace("]", r"\]")):
            Direction.load(_write(str(tmp_path / f"bad{ext}"), kind, as_input(bad)))
        os.remove(str(tmp_path / f"bad{ext}"))
    nan = boundary.copy()
    nan[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Direction.load(_write(str(tmp_path / f"nan{ext}"), kind, as_input(nan)))


def test_files_that_are_no_direction_are_refused(tmp_path):
    path = str(tmp_path / "objects.npy")
    np.save(path, np.array([{"boundary": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError, match="objects.npy: expected a direction.*allow_pickle=False"):
        Direction.load(path)
    np.save(str(tmp_path / "bool.npy"), np.ones((1, 8), bool))
    with pytest.raises(CheckpointError, match="bool.npy: .*bool values, not numbers"):
        Direction.load(str(tmp_path / "bool.npy"))
    torch.save({"ckpt": "stylegan2.pt", "eigvec": torch.eye(8)}, str(tmp_path / "factor.pt"))
    with pytest.raises(CheckpointError, match="factor.pt: .*SeFa factor file.*use the SeFa Direction node"):
        Direction.load(str(tmp_path / "factor.pt"))
    torch.save({"boundary": torch.zeros(1, 8)}, str(tmp_path / "dict.pt"))
    with pytest.raises(CheckpointError, match=r"dict.pt: .*a dict with keys \['boundary'\], not a tensor"):
        Direction.load(str(tmp_path / "dict.pt"))
    save_atomic({"a": torch.zeros(8), "b": torch.zeros(8)}, str(tmp_path / "two.safetensors"))
    with pytest.raises(CheckpointError, match="two.safetensors: .*2 tensors"):
        Direction.load(str(tmp_path / "two.safetensors"))
    save_atomic({"fs3": torch.zeros(4, 8)}, str(tmp_path / "fs3.safetensors"), {"format": "styleclip-fs3"})
    with pytest.raises(CheckpointError, match="another kind.*styleclip-fs3"):
        Direction.load(str(tmp_path / "fs3.safetensors"))
    (tmp_path / "d.txt").write_text("0.1 0.2")
    with pytest.raises(CheckpointError, match="extension .txt"):
        Direction.load(str(tmp_path / "d.txt"))


def test_the_folder_lists_every_readable_extension(comfy):
    import importlib

    common = importlib.import_module(f"{comfy.harness.PACK}.nodes.common")
    assert set(common.MODEL_FOLDERS["styleclip_directions"]) == set(direction_files.DIRECTION_EXTENSIONS)


# ---- GANSpace ---------------------------------------------------------------------------------


def test_ganspace_samples_are_seeded_blocks(g, monkeypatch):
    with torch.no_grad():
        one = g.mapping(torch.randn(700, g.style_dim, generator=torch.Generator().manual_seed(11)))
    assert torch.equal(fz.ganspace_samples(g, 700, 11), one)  # one block: the same call
    monkeypatch.setattr(fz, "SAMPLE_BLOCK", 300)
    rng = torch.Generator().manual_seed(11)
    with torch.no_grad():
        blocks = torch.cat([g.mapping(torch.randn(n, g.style_dim, generator=rng)) for n in (300, 300, 100)])
    assert torch.equal(fz.ganspace_samples(g, 700, 11), blocks)


def test_ganspace_matches_an_independent_pca(g, monkeypatch):
    """Ours: blockwise QR of the centred samples, then SVD of R. Re-enactment: NumPy's covariance
    (ddof 1) and eigh. Variances: Weyl's theorem with the backward errors of both float64
    computations, each within (n + D) u64 |X|_F^2 / (n - 1). Axes: each within its Davis-Kahan
    angle of the covariance's eigenvector (tests/eigen_bounds.py), with that rounding as the floor."""
    monkeypatch.setattr(fz, "SAMPLE_BLOCK", 1000)  # several QR blocks
    n, seed = 2500, 3
    fz.clear_cache()
    f = fz.ganspace(g, n, seed)
    X = fz.ganspace_samples(g, n, seed).double().numpy()
    C = np.cov(X, rowvar=False)
    lam, vec = np.linalg.eigh(C)
    lam, vec = torch.from_numpy(lam[::-1].copy()), torch.from_numpy(vec[:, ::-1].copy())
    Xc = X - X.mean(0)
    rounding = (n + g.style_dim) * U64 * float((Xc**2).sum()) / (n - 1)
    # blockwise float64 sums: each within n u64 sum|x| (any summation order)
    assert float((f.mean - torch.from_numpy(X).mean(0)).abs().max()) <= 2 * n * U64 * float(np.abs(X).sum(0).max()) / n
    assert bool((f.values[:-1] >= f.values[1:]).all()) and bool((f.share[:-1] >= f.share[1:]).all())
    assert abs(float(f.share.sum()) - 1) < 1e-12 and float(f.share[0]) > float(f.share[-1])
    assert float((f.values.square() - lam).abs().max()) <= 2 * rounding
    torch.testing.assert_close(f.share, lam / lam.sum(), atol=4 * rounding / float(lam.sum()), rtol=0)
    A = torch.from_numpy(C)
    for k in range(g.style_dim):
        others = torch.cat([lam[:k], lam[k + 1:]])
        bound = distance_bound(sin_theta_bound(A, f.axes[:, k], others, rounding), sin_theta_bound(A, vec[:, k], others, rounding))
        # bounds up to 3.6e-8 here (every gap is clear at these sizes), distances measured up to 1.5e-13
        assert aligned_distance(f.axes[:, k], vec[:, k]) <= bound < 1e-6, k
    # the sign convention: each axis's largest entry is positive
    assert bool((f.axes.gather(0, f.axes.abs().argmax(0, keepdim=True)) > 0).all())
    assert torch.allclose(f.axes.T @ f.axes, torch.eye(g.style_dim, dtype=torch.float64), atol=1e-12)


def test_ganspace_direction_rows_scale_and_cache(g, monkeypatch):
    fz.clear_cache()
    f = fz.ganspace(g, 1000, 0)
    d = fz.ganspace_direction(g, 2, 3, 6, 1000, 0)
    assert d.space == "w+" and d.info["rows"] == [3, 6]
    assert torch.equal(d.deltas[0][3:6], (f.axes[:, 2] * f.values[2]).expand(3, -1))
    assert not d.deltas[0][:3].any() and not d.deltas[0][6:].any()
    assert math.isclose(float(d.deltas[0][3].norm()), float(f.values[2]), rel_tol=1e-12)  # one standard deviation
    whole = fz.ganspace_direction(g, 2, 0, 0, 1000, 0)
    assert whole.space == "w" and torch.equal(whole.deltas[0], d.deltas[0][3])
    monkeypatch.setattr(fz, "ganspace_samples", lambda *a: pytest.fail("the cached decomposition was recomputed"))
    assert fz.ganspace(g, 1000, 0) is f
    fz.ganspace_direction(g, 5, 0, 4, 1000, 0)
    with pytest.raises(ValueError, match="component 64 does not exist: there are 64 GANSpace components"):
        fz.ganspace_direction(g, 64, 0, 0, 1000, 0)
    with pytest.raises(ValueError, match=r"W\+ rows \[4, 2\).*rows 0 to 7"):
        fz.ganspace_direction(g, 0, 4, 2, 1000, 0)
    with pytest.raises(ValueError, match=r"rows \[0, 9\)"):
        fz.sefa_direction(g, 0, 0, 9)


def test_ganspace_with_fewer_samples_than_dimensions(g):
    with pytest.raises(ValueError, match=r"there are 10 GANSpace components \(0 to 9\) \(10 samples give at most 9\)"):
        fz.ganspace_direction(g, 20, 0, 0, 10, 0)
    with pytest.raises(ValueError, match="component 9 has no variance in 10 samples"):
        fz.ganspace_direction(g, 9, 0, 0, 10, 0)
    fz.ganspace_direction(g, 8, 0, 0, 10, 0)


# ---- nodes ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stand_in(comfy):
    g = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="auto", precision="fp32").args[0]
    latents = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=3, batch_size=2, truncation_psi=0.7).args[0]
    return g, latents


def test_sefa_node(comfy, stand_in):
    g, latents = stand_in
    lib = comfy.library("edits.factorization")
    direction, info = comfy.run("StyleCLIP_SeFaDirection", generator=g, component=1, start_row=0, end_row=0).args
    expected = lib.sefa_direction(g, 1)
    assert direction.space == "w" and torch.equal(direction.deltas[0], expected.deltas[0])
    _, s = lib.sefa_factors(g)
    assert info.startswith(f"SeFa component 1 of {g.style_dim}: singular value {s[1]:.4g}") and "all W+ rows (a W direction)" in info
    assert f"largest singular values: {s[0]:.4g}, {s[1]:.4g}" in info
    rows, info = comfy.run("StyleCLIP_SeFaDirection", generator=g, component=1, start_row=4, end_row=8).args
    assert rows.space == "w+" and "W+ rows 4 to 7" in info and torch.equal(rows.deltas[0][4], expected.deltas[0])
    edited, originals, count = comfy.run("StyleCLIP_ApplyGlobalDirection", generator=g, latents=latents, direction=rows, alphas="-5, 5").args
    assert count == 2 and edited.space == "w+" and edited.batch_size == 4
    assert torch.equal(edited.w_plus[:, :4], originals.w_plus[:, :4]) and torch.equal(edited.w_plus[:, 8:], originals.w_plus[:, 8:])
    with pytest.raises(ValueError, match="W\\+ rows \\[6, 3\\)"):
        comfy.run("StyleCLIP_SeFaDirection", generator=g, component=0, start_row=6, end_row=3)


def test_ganspace_node(comfy, stand_in, monkeypatch):
    g, latents = stand_in
    lib = comfy.library("edits.factorization")
    direction, info = comfy.run("StyleCLIP_GANSpaceDirection", generator=g, component=0, start_row=0, end_row=5, samples=2000, seed=1).args
    f = lib.ganspace(g, 2000, 1)
    assert direction.space == "w+" and torch.equal(direction.deltas[0], lib.ganspace_direction(g, 0, 0, 5, 2000, 1).deltas[0])
    assert info.startswith(f"GANSpace component 0 of {g.style_dim} (2000 samples, seed 1): std {f.values[0]:.4g}, explains {100 * f.share[0]:.2f} % of the variance")
    monkeypatch.setattr(lib, "ganspace_samples", lambda *a: pytest.fail("the node recomputed the decomposition"))
    other, _ = comfy.run("StyleCLIP_GANSpaceDirection", generator=g, component=3, start_row=0, end_row=0, samples=2000, seed=1).args
    assert other.space == "w" and torch.equal(other.deltas[0], f.axes[:, 3] * f.values[3])
    # a W direction on StyleSpace latents: Apply Direction edits in StyleSpace
    styles = comfy.library("models.latents").Latents(styles=latents.to_styles(g))
    edited, _, _ = comfy.run("StyleCLIP_ApplyGlobalDirection", generator=g, latents=styles, direction=other, alphas="2").args
    assert edited.space == "s"
    expected = add_to_styles(styles.styles, other.to_space("s", g), [2.0])
    assert all(torch.equal(a, b) for a, b in zip(edited.styles, expected))


def test_load_direction_node_reads_other_tools_files(comfy, stand_in):
    g, latents = stand_in
    folder = comfy.folder_paths.get_folder_paths("styleclip_directions")[0]
    os.makedirs(folder, exist_ok=True)
    boundary = np.random.RandomState(1).randn(1, g.style_dim)
    paths = [os.path.join(folder, "smile_boundary.npy"), os.path.join(folder, "rows.pt")]
    np.save(paths[0], boundary)
    torch.save(torch.ones(g.n_latent, g.style_dim), paths[1])
    try:
        options = comfy.nodes["StyleCLIP_LoadDirection"].object_info()["input"]["required"]["direction_name"][1]["options"]
        assert {"smile_boundary.npy", "rows.pt"} <= set(options)
        d, info = comfy.run("StyleCLIP_LoadDirection", direction_name="smile_boundary.npy").args
        assert d.space == "w" and info == "smile_boundary.npy: W (smile_boundary.npy [1, 64])"
        edited = comfy.run("StyleCLIP_ApplyGlobalDirection", generator=g, latents=latents, direction=d, alphas="1").args[0]
        assert torch.equal(edited.w_plus, (latents.w_plus.double() + torch.from_numpy(boundary[0])).float())
        rows, info = comfy.run("StyleCLIP_LoadDirection", direction_name="rows.pt").args
        assert rows.space == "w+" and "W+ rows 0..9" in info
    finally:
        for p in paths:
            os.remove(p)
