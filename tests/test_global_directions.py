"""Global directions: statistics, boundary, edit and rendering match global_torch (fixture);
channel relevance matches a literal re-enactment of SingleChannel.py."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import load_fixture, strip
from styleclip_core.edits import global_directions as gd
from styleclip_core.edits.directions import Direction, add_to_styles
from styleclip_core.edits import channel_relevance as cr
from styleclip_core.formats import fs3_files
from styleclip_core.models.generator import conv_layers, num_conv_channels
from styleclip_core.models.generator import Generator


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("global_directions")


@pytest.fixture(scope="module")
def g():
    T, _ = load_fixture("ada_to_rosinality")
    g = Generator.from_state_dict(strip(T, "rosinality."))
    g.w_avg.copy_(T["ada.mapping.w_avg"])
    g.has_w_avg = True
    return g.eval()


@pytest.fixture(scope="module")
def stats(g, fixture):
    _, meta = fixture
    return gd.style_statistics(g, num_samples=meta["style_statistics_recipe"]["num_img"], batch_size=512)


def test_layer_bookkeeping(g, fixture):
    _, meta = fixture
    assert [l.name for l in g.style_layers] == meta["s_names"]
    assert conv_layers(g) == meta["mindexs(non-toRGB layers)"]
    assert num_conv_channels(g) == meta["num_conv_channels(rows of fs3)"]


def test_style_statistics(g, fixture, stats, parity):
    T, meta = fixture
    tol = meta["tolerance"]
    # the fixture's tolerance: atol 1e-5 with its code_std_rtol for the statistics, atol/rtol 1e-5 for the styles
    for i, name in enumerate(meta["s_names"]):
        parity.close(f"global_directions:out.code_mean.{name}", stats.mean[i], T[f"out.code_mean.{name}"], atol=1e-5, rtol=tol["code_std_rtol"])
        parity.close(f"global_directions:out.code_std.{name}", stats.std[i], T[f"out.code_std.{name}"], atol=1e-5, rtol=tol["code_std_rtol"])
    with torch.no_grad():
        first_two = gd.reference_styles(g, gd.sample_z(2, g.style_dim))
    for s, name in zip(first_two, meta["s_names"]):
        parity.close(f"global_directions:in.s.{name}", s, T[f"in.s.{name}"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", [0, 1])
def test_boundary_codes_images(g, fixture, case, parity):
    T, meta = fixture
    tol = meta["tolerance"]
    c = meta["cases"][case]
    stored = gd.StyleStatistics([T[f"out.code_mean.{n}"] for n in meta["s_names"]], [T[f"out.code_std.{n}"] for n in meta["s_names"]])
    direction = gd.boundary(T["in.fs3"], T["in.dt"], stored, g, c["beta"])
    assert direction.info["num_channels"] == c["num_channels_manipulated"] == direction.num_channels
    for d, name in zip(direction.deltas, meta["s_names"]):
        key = f"out.{c['tag']}.boundary.{name}"
        parity.close(f"global_directions:{key}", d, T[key], atol=tol["atol"], rtol=tol["rtol"])
    styles = [T[f"in.s.{n}"] for n in meta["s_names"]]
    codes = add_to_styles(styles, direction, c["alphas"])
    n_alpha = len(c["alphas"])
    for code, name in zip(codes, meta["s_names"]):
        key = f"out.{c['tag']}.codes.{name}"
        parity.close(f"global_directions:{key}", code.reshape(2, n_alpha, -1), T[key], atol=tol["atol"], rtol=tol["rtol"])
    with torch.no_grad():
        images = g.synthesis(codes)
    key = f"out.{c['tag']}.images"
    parity.close(f"global_directions:{key}", images.reshape(2, n_alpha, 3, 64, 64), T[key], atol=tol["images_atol"], rtol=tol["rtol"])


def test_beta_removing_every_channel_is_a_clear_error(g, fixture):
    T, meta = fixture
    stored = gd.StyleStatistics([T[f"out.code_mean.{n}"] for n in meta["s_names"]], [T[f"out.code_std.{n}"] for n in meta["s_names"]])
    with pytest.raises(ValueError, match="keeps no channel"):
        gd.boundary(T["in.fs3"], T["in.dt"], stored, g, 2.0)


def test_short_fs3_zero_fills(g, fixture):
    T, meta = fixture
    stored = gd.StyleStatistics([T[f"out.code_mean.{n}"] for n in meta["s_names"]], [T[f"out.code_std.{n}"] for n in meta["s_names"]])
    short = T["in.fs3"][:200]  # ends inside conv1_resolution_64's predecessors
    d = gd.boundary(short, T["in.dt"], stored, g, 0.1)
    assert all(int((x != 0).sum()) == 0 for x in d.deltas[11:])
    with pytest.raises(ValueError, match="rows <= 232"):
        gd.boundary(torch.zeros(300, 16), T["in.dt"], stored, g, 0.1)


def test_direction_save_load_combine(tmp_path, g, fixture):
    T, meta = fixture
    stored = gd.StyleStatistics([T[f"out.code_mean.{n}"] for n in meta["s_names"]], [T[f"out.code_std.{n}"] for n in meta["s_names"]])
    a = gd.boundary(T["in.fs3"], T["in.dt"], stored, g, 0.1)
    b = gd.boundary(T["in.fs3"], -T["in.dt"], stored, g, 0.25)
    path = str(tmp_path / "dir.safetensors")
    a.save(path)
    loaded = Direction.load(path)
    assert len(loaded.deltas) == len(a.deltas) and all(torch.equal(x, y) for x, y in zip(loaded.deltas, a.deltas)) and loaded.info == a.info
    with pytest.raises(FileExistsError):
        a.save(path)
    mix = Direction.combine([a, b], [1.0, 0.5])
    for x, y, z in zip(mix.deltas, a.deltas, b.deltas):
        assert torch.equal(x, y + 0.5 * z)  # combine computes 0 + 1.0 * y + 0.5 * z: the same IEEE operations


def _fake_clip(dim=8, seed=0):
    proj = torch.randn(3 * 4 * 4, dim, generator=torch.Generator().manual_seed(seed))
    return lambda images: F.adaptive_avg_pool2d(images, 4).flatten(1) @ proj


def _literal_single_channel(g, encode, stats, job):
    """SingleChannel.py as written: NumPy arrays, the shallow list copy, one render per image and alpha."""
    with torch.no_grad():
        dlatents_o = [s.numpy().copy() for s in gd.reference_styles(g, gd.sample_z(job.num_images, g.style_dim, job.seed))]
    mean = [m.numpy() for m in stats.mean]
    std = [s.numpy() for s in stats.std]
    all_f = []
    for lindex in job.layers(g):
        for cindex in range(dlatents_o[lindex].shape[1]):
            dlatents = copy.copy(dlatents_o)
            dlatents[lindex][:, cindex] = mean[lindex][cindex]
            feats = np.zeros((job.num_images, 2, 8))
            for i in range(job.num_images):
                for k, alpha in enumerate((-job.alpha, job.alpha)):
                    codes = [d[i:i + 1].copy() for d in dlatents]
                    codes[lindex][0, cindex] += alpha * std[lindex][cindex]
                    with torch.no_grad():
                        img = g.synthesis([torch.from_numpy(c) for c in codes])
                    feats[i, k] = encode(img)[0].double().numpy()
            all_f.append(feats)
    fs = np.array(all_f)
    fs1 = fs / np.linalg.norm(fs, axis=-1)[..., None]
    fs2 = fs1[:, :, 1] - fs1[:, :, 0]
    fs3 = (fs2 / np.linalg.norm(fs2, axis=-1)[..., None]).mean(1)
    return torch.from_numpy(fs3 / np.linalg.norm(fs3, axis=-1)[:, None]).float()


@pytest.mark.parametrize("max_resolution", [16, None])
def test_channel_relevance_matches_single_channel_script(g, stats, max_resolution):
    encode = _fake_clip()
    job = cr.RelevanceJob(num_images=3, max_resolution=max_resolution)
    if max_resolution is None:  # the full sweep is slow in the literal form: compare its first rows
        job_small = cr.RelevanceJob(num_images=3, max_resolution=8)
        expected = _literal_single_channel(g, encode, stats, job_small)
        ours = cr.channel_relevance(g, encode, stats, job, batch_size=64)
        assert ours.shape == (num_conv_channels(g), 8)
        # batched float32 renders vs one-at-a-time renders and float64 NumPy normalisations (unit
        # rows): measured 2.2e-6 to 2.9e-6 (ratio 0.09) at 1 and 4 threads and AVX512/AVX2/default
        torch.testing.assert_close(ours[: expected.shape[0]], expected, atol=2e-5, rtol=1e-4)
        return
    expected = _literal_single_channel(g, encode, stats, job)
    ours = cr.channel_relevance(g, encode, stats, job, batch_size=7)
    # as above: measured 3.3e-6 to 4.7e-6 (ratio 0.17)
    torch.testing.assert_close(ours, expected, atol=2e-5, rtol=1e-4)


def test_channel_relevance_resumes(tmp_path, g, stats, monkeypatch):
    encode = _fake_clip()
    job = cr.RelevanceJob(num_images=2, max_resolution=8)
    full = cr.channel_relevance(g, encode, stats, job, batch_size=16)
    path = str(tmp_path / "partial.safetensors")
    seen = []

    def stop_after_40(done, total, preview):
        if done >= 40:
            raise KeyboardInterrupt

    monkeypatch.setattr(cr, "SAVE_EVERY_S", 0)
    with pytest.raises(KeyboardInterrupt):
        cr.channel_relevance(g, encode, stats, job, batch_size=16, partial_path=path, progress=stop_after_40)
    partial = fs3_files.load_fs3(path)
    assert 0 < partial.shape[0] < full.shape[0]

    def count(done, total, preview):
        seen.append(done)

    resumed = cr.channel_relevance(g, encode, stats, job, batch_size=16, partial_path=path, progress=count)
    # the resumed run renders whole units, the uninterrupted run's batches: the same bits
    assert torch.equal(resumed, full)
    assert partial.shape[0] < seen[0] <= partial.shape[0] + 4 and seen[-1] == full.shape[0]  # only the rest was computed
    with pytest.raises(ValueError, match="different relevance job"):
        cr.channel_relevance(g, encode, stats, cr.RelevanceJob(num_images=3, max_resolution=8), partial_path=path)
