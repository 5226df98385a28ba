"""Channel relevance as users get it: the CLIP encoder relevance uses, content-hash cache files,
resuming, locks, official fs3.npy files, identical-pair skipping and mixed precision."""
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from styleclip_core.edits import relevance_cache as gc
from styleclip_core.edits import global_directions as gd
from styleclip_core.edits import channel_relevance as cr
from styleclip_core.formats import fs3_files
from styleclip_core.models.generator import num_conv_channels
from styleclip_core.formats.generator_files import generator_fingerprint
from styleclip_core.formats.clip_files import clip_fingerprint
from styleclip_core.formats import files
from styleclip_core.formats import tiny_models
from styleclip_core.formats.generator_files import load_generator
from styleclip_core.formats.clip_files import load_clip

FEW = cr.RelevanceJob(num_images=2, max_resolution=8)  # 96 channels of the tiny generator


@pytest.fixture(scope="module")
def models(tiny_models_dir):
    g = load_generator(os.path.join(tiny_models_dir, "stylegan", "stylegan2-ffhq-config-f.pt"))
    clip = load_clip(os.path.join(tiny_models_dir, "openclip", "ViT-B-32.pt"))
    return g, clip


@pytest.fixture(scope="module")
def stats(models):
    return gd.style_statistics(models[0], num_samples=2000)


def test_relevance_encoder_is_clip_on_clips_own_preprocessing(models):
    g, clip = models
    images = torch.rand(3, 3, 64, 64) * 2.2 - 1.1  # also outside [-1, 1]: the uint8 conversion clips
    for preprocessing in ("styleclip", "normalized"):  # the loader's choice does not matter here
        prepare, encode = gc.relevance_encoder(clip.with_preprocessing(preprocessing))
        x = prepare(images)
        assert x.shape == (3, 3, 224, 224)
        expected = F.normalize(clip.net.encode_image(cr.clip_input_for_relevance(images, 224, clip.mean, clip.std)), dim=-1)
        # unit CLIP features (|x| <= 0.5) through two spellings of the same preprocessing: measured
        # exact at 1 and 4 threads and AVX512/AVX2/default; the bound allows a few ulp of reordering
        torch.testing.assert_close(encode(x), expected, atol=1e-6, rtol=1e-5)
    # at CLIP's size the box resize is the identity, which ClipModel now skips
    x224 = torch.rand(2, 3, 224, 224)
    m = clip.with_preprocessing("styleclip")
    assert torch.equal(m.prepare_images(x224), x224)
    box = m._resize(224, x224)
    assert torch.equal(box, torch.eye(224))


def test_fingerprints_follow_the_weights_not_the_files(models, tiny_models_dir, tmp_path):
    g, clip = models
    key = generator_fingerprint(g)
    assert len(key) == 64 and generator_fingerprint(g) == key
    # the same network from NVIDIA's format, under another name
    same = load_generator(tiny_models.write_ada_pkl(tiny_models.tiny_generator(), str(tmp_path / "renamed.pkl")))
    assert generator_fingerprint(same) == key
    other = tiny_models.tiny_generator(seed=1)
    assert generator_fingerprint(other) != key
    moved_w_avg = tiny_models.tiny_generator()
    moved_w_avg.w_avg.add_(0.01)
    assert generator_fingerprint(moved_w_avg) != key
    # CLIP: image tower and preprocessing only
    ck = clip_fingerprint(clip)
    assert clip_fingerprint(clip.with_preprocessing("normalized")) == ck
    reloaded = load_clip(os.path.join(tiny_models_dir, "openclip", "ViT-B-32.pt"))
    with torch.no_grad():
        reloaded.net.token_embedding.weight.add_(1.0)  # the text tower does not enter fs3
    assert clip_fingerprint(reloaded) == ck
    with torch.no_grad():
        reloaded.net.visual.proj.add_(1e-3)
    files._module_digests.clear()
    assert clip_fingerprint(reloaded) != ck


def test_compute_once_then_reuse(models, tmp_path):
    g, clip = models
    folder = str(tmp_path / "global")
    calls = []
    rel = gc.relevance_for(g, clip, [folder], FEW, batch_size=16, statistics_samples=2000, progress=lambda d, t, p=None: calls.append((d, t)))
    assert rel.info["computed"] and rel.fs3.shape == (96, 32)
    assert rel.info["rendered"] == 96 * 4 and rel.info["encoded"] <= rel.info["rendered"]
    gk, ck = generator_fingerprint(g), clip_fingerprint(clip)
    name = os.path.basename(rel.source)
    assert name.startswith(f"fs3-g{gk[:12]}-c{ck[:12]}-j") and name.endswith(".safetensors")
    meta = fs3_files.fs3_metadata(rel.source)
    assert meta["generator"] == gk and meta["clip"] == ck and meta["job"]["num_images"] == 2
    assert sorted(os.listdir(folder)) == sorted([name, os.path.basename(rel.info["statistics"])])  # no partial or lock left
    calls.clear()
    again = gc.relevance_for(g, clip, [str(tmp_path / "elsewhere"), folder], FEW, batch_size=4, statistics_samples=2000, progress=lambda *a: calls.append(a))
    assert not again.info["computed"] and not calls and again.source == rel.source
    assert torch.equal(again.fs3, rel.fs3)
    # another job or another generator is another file
    other = gc.relevance_for(tiny_models.tiny_generator(seed=1), clip, [folder], cr.RelevanceJob(num_images=1, max_resolution=4), 16, 2000)
    assert other.info["computed"] and other.source != rel.source and other.fs3.shape == (32, 32)


def test_a_file_under_our_name_with_other_contents_is_never_overwritten(models, tmp_path):
    g, clip = models
    folder = str(tmp_path)
    rel = gc.relevance_for(g, clip, [folder], FEW, 16, 2000)
    os.remove(rel.source)
    fs3_files.save_fs3(torch.zeros(96, 32), rel.source, {"generator": "someone else's"})
    before = open(rel.source, "rb").read()
    with pytest.raises(ValueError, match="other models or settings than its name says"):
        gc.relevance_for(g, clip, [folder], FEW, 16, 2000)
    assert open(rel.source, "rb").read() == before


def test_interrupted_computation_resumes(models, stats, tmp_path):
    g, clip = models
    folder = str(tmp_path)
    full = cr.channel_relevance(g, gc.relevance_encoder(clip)[1], gc.statistics_for(g, [folder], 2000)[0], FEW, 16, prepare_image=gc.relevance_encoder(clip)[0])

    def stop(done, total, preview=None):
        if done >= 40:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gc.relevance_for(g, clip, [folder], FEW, 16, 2000, progress=stop)
    (incomplete,) = [f for f in os.listdir(folder) if f.endswith(gc.INCOMPLETE)]
    assert not [f for f in os.listdir(folder) if f.endswith(".lock")]
    assert fs3_files.load_fs3(os.path.join(folder, incomplete)).shape[0] == 40
    seen = []
    rel = gc.relevance_for(g, clip, [folder], FEW, 16, 2000, progress=lambda d, t, p=None: seen.append(d))
    assert rel.info["computed"] and rel.info["rendered"] == (96 - 40) * 4  # only the rest
    assert min(seen) > 40
    # a resumed run renders whole units (channel_relevance.relevance_units), the batches of the
    # uninterrupted run: the same bits
    assert torch.equal(rel.fs3, full)
    assert not os.path.exists(os.path.join(folder, incomplete))


def test_lock_of_a_running_process_is_respected_and_a_dead_ones_taken_over(models, tmp_path):
    g, clip = models
    gk = generator_fingerprint(g)
    folder = str(tmp_path)
    # find the statistics file name by computing it, then lock it as if another process were at it
    _, stats_path = gc.statistics_for(g, [folder], 1000)
    os.remove(stats_path)
    lock = stats_path + ".lock"
    with open(lock, "w") as f:
        json.dump({"pid": os.getppid(), "host": gc.socket.gethostname()}, f)  # alive: our parent
    with pytest.raises(RuntimeError, match="being computed by another process"):
        gc.statistics_for(g, [folder], 1000)
    assert os.path.exists(lock) and not os.path.exists(stats_path)
    if os.name == "posix":
        with open(lock, "w") as f:
            json.dump({"pid": 2**22 + 12345, "host": gc.socket.gethostname()}, f)  # no such process
        gc.statistics_for(g, [folder], 1000)
        assert os.path.exists(stats_path) and not os.path.exists(lock)
    os.remove(stats_path)
    with open(lock, "w") as f:
        json.dump({"pid": os.getppid(), "host": "another-machine"}, f)
    old = os.path.getmtime(lock) - gc.LOCK_STALE_S - 5
    os.utime(lock, (old, old))  # not refreshed for too long
    gc.statistics_for(g, [folder], 1000)
    assert os.path.exists(stats_path) and f"g{gk[:12]}" in stats_path


@pytest.mark.parametrize("rows", ["all", "up to 128 px"])
def test_official_fs3_npy(models, tmp_path, rows):
    g, clip = models
    n = num_conv_channels(g) if rows == "all" else 200  # a file that stops early leaves later layers unedited
    path = str(tmp_path / "fs3.npy")
    fs3 = np.random.RandomState(0).randn(n, 32).astype(np.float32)
    np.save(path, fs3 / np.linalg.norm(fs3, axis=1, keepdims=True))
    rel = gc.relevance_from_file(path, g, [str(tmp_path)], 1000, clip)
    assert rel.clip_key is None and rel.fs3.shape == (n, 32)
    d = rel.direction(clip, "face", "face with blonde hair", 0.05)
    assert d.info["num_channels"] > 0 and d.info["target"] == "face with blonde hair"
    if n < num_conv_channels(g):
        assert all(int((x != 0).sum()) == 0 for x in d.deltas[-4:])
    np.save(str(tmp_path / "long.npy"), np.zeros((num_conv_channels(g) + 1, 32), np.float32))
    with pytest.raises(ValueError, match="rows <="):
        gc.relevance_from_file(str(tmp_path / "long.npy"), g, [str(tmp_path)], 1000)
    np.save(str(tmp_path / "pickled.npy"), np.array([{"not": "an array"}], dtype=object))
    with pytest.raises(Exception, match="unreadable|fs3"):
        gc.relevance_from_file(str(tmp_path / "pickled.npy"), g, [str(tmp_path)], 1000)


def test_computed_file_is_checked_against_the_models_it_is_used_with(models, tmp_path):
    g, clip = models
    rel = gc.relevance_for(g, clip, [str(tmp_path)], FEW, 16, 1000)
    loaded = gc.relevance_from_file(rel.source, g, [str(tmp_path)], 1000, clip)
    assert loaded.clip_key == rel.clip_key
    with pytest.raises(ValueError, match="another generator"):
        gc.relevance_from_file(rel.source, tiny_models.tiny_generator(seed=3), [str(tmp_path)], 1000)
    other_clip = clip.with_preprocessing("styleclip")
    other_clip.mean = (0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="another CLIP"):
        gc.relevance_from_file(rel.source, g, [str(tmp_path)], 1000, other_clip)
    with pytest.raises(ValueError, match="computed with another CLIP"):
        loaded.direction(other_clip, "face", "smiling face", 0.1)


def test_identical_pairs_skip_clip_and_give_the_same_rows(models, stats):
    g, _ = models
    proj = torch.randn(3 * 16, 8, generator=torch.Generator().manual_seed(0))
    encode = lambda x: F.adaptive_avg_pool2d(x, 4).flatten(1) @ proj  # noqa: E731
    dead = gd.StyleStatistics([m.clone() for m in stats.mean], [s.clone() for s in stats.std])
    dead.std[2][[3, 7]] = 0  # two channels whose probes equal each other
    plain = cr.channel_relevance(g, encode, dead, FEW, 16)
    tally = {}
    skipping = cr.channel_relevance(g, encode, dead, FEW, 16, prepare_image=lambda x: x, tally=tally)
    # skipping identical pairs changes which images share a batch (unit rows): measured exact
    torch.testing.assert_close(skipping, plain, atol=1e-5, rtol=0)
    assert tally["rendered"] - tally["encoded"] == 2 * 2 * FEW.num_images
    assert skipping[32 + 3].abs().sum() == 0 and skipping[32 + 7].abs().sum() == 0


def test_bfloat16_autocast_parity(models, stats):
    g, clip = models
    prepare, encode = gc.relevance_encoder(clip)
    job = cr.RelevanceJob(num_images=4, max_resolution=4)
    exact = cr.channel_relevance(g, encode, stats, job, 32, prepare_image=prepare)
    mixed = cr.channel_relevance(g, encode, stats, cr.RelevanceJob(**{**job.__dict__, "precision": "bf16"}), 32, prepare_image=prepare)
    cosine = (exact * mixed).sum(-1)
    assert cosine.median() > 0.9, cosine  # rounding, not another result (README: parity on a GPU)
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16, found 'half'"):
        cr.RelevanceJob(precision="half")


def test_old_precision_words_are_the_same_job():
    """Channel relevance said float32 / bfloat16 / float16 before the pack had one precision
    vocabulary: those words still work, and a job records its precision as caches and partial
    files recorded it then, so a cache computed before is found again (its name hashes this)."""
    for old, new in (("float32", "fp32"), ("bfloat16", "bf16"), ("float16", "fp16")):
        assert cr.RelevanceJob(precision=old) == cr.RelevanceJob(precision=new)
        assert cr.RelevanceJob(precision=new).precision == new
        assert cr.RelevanceJob(precision=new).record()["precision"] == old
    assert cr.RelevanceJob().record() == {"num_images": 100, "alpha": 5.0, "max_resolution": 128, "cumulative_mean": True, "seed": 5, "psi": 0.7, "cutoff": 8, "precision": "float32"}


def test_cli(models, tiny_models_dir, tmp_path, capsys):
    from styleclip_core.__main__ import main

    args = ["relevance", "--generator", os.path.join(tiny_models_dir, "stylegan", "stylegan2-ffhq-config-f.pt"), "--clip",
            os.path.join(tiny_models_dir, "openclip", "ViT-B-32.pt"), "--cache-dir", str(tmp_path), "--num-images", "1",
            "--layers", "128", "--statistics-samples", "1000"]
    main(args)
    first = capsys.readouterr().out
    assert "computed in" in first and "232/232" in first
    main(args)
    assert "found in the cache" in capsys.readouterr().out
