"""The long jobs under torchrun (issue 16): channel relevance and mapper training on two gloo
ranks on 127.0.0.1, against one process, with the tiny stand-ins.

Each multi-rank run is the real command line under the real launcher
(``torchrun --standalone --nproc_per_node 2 -m styleclip_core ...``, which picks a free port),
started in a process group of its own that is killed if it outlives its time limit; the
one-process runs are the same commands called in this process. Every process runs one torch
thread (torchrun's default for several processes per machine, and this module's), so the
relevance comparisons can ask for the same bits.
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from styleclip_core import distributed
from styleclip_core.__main__ import STOPPED, main
from styleclip_core.edits import channel_relevance as cr
from styleclip_core.formats import fs3_files
from styleclip_core.formats.files import read_safetensors, save_atomic
from styleclip_core.formats.mapper_files import load_mapper
from styleclip_core.formats.tiny_models import TINY_GENERATOR, tiny_generator
from styleclip_core.models.mapper import build_mapper
from styleclip_core.edits.mapper_training import read_training_state

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")
LAUNCH_TIMEOUT_S = 120


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models run faster on one thread


def torchrun(ranks: int, args: list[str]) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node ranks -m styleclip_core *args`` from the pack's
    folder; the whole process group it starts is killed when it runs past LAUNCH_TIMEOUT_S."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=ROOT)
    cmd = [TORCHRUN, "--standalone", "--nnodes", "1", "--nproc_per_node", str(ranks), "-m", "styleclip_core", *args]
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=LAUNCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # torchrun and the ranks it started (their own group)
        out, err = p.communicate()
        pytest.fail(f"torchrun did not finish within {LAUNCH_TIMEOUT_S} s:\n{out}\n{err[-3000:]}")
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.args}\nexit {result.returncode}\n{result.stdout}\n{result.stderr[-4000:]}"
    return result.stdout


# ---- channel relevance ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def relevance_args(tiny_models_dir):
    """The whole tiny job (232 channels), 2 faces per channel, batches of 6 probes: 3 channels to a
    unit, batches that run across channel boundaries."""
    return ["relevance", "--generator", os.path.join(tiny_models_dir, "stylegan", "stylegan2-ffhq-config-f.pt"),
            "--clip", os.path.join(tiny_models_dir, "openclip", "ViT-B-32.pt"), "--num-images", "2", "--layers", "128",
            "--statistics-samples", "1000", "--batch-size", "6", "--device", "cpu"]


@pytest.fixture(scope="module")
def one_process(relevance_args, tmp_path_factory):
    """(rows, metadata) of fs3 computed by one process."""
    folder = str(tmp_path_factory.mktemp("relevance_one"))
    assert main([*relevance_args, "--cache-dir", folder]) == 0
    (path,) = glob.glob(os.path.join(folder, "fs3-*"))
    return fs3_files.load_fs3(path), fs3_files.fs3_metadata(path), os.path.basename(path)


def test_two_ranks_compute_the_one_process_rows_and_resume_with_other_numbers_of_ranks(relevance_args, one_process, tmp_path):
    """Two ranks from scratch, stopped by --max-rows; one process goes on from both ranks' files
    and stops again; two ranks finish from the three files and write the one-process file."""
    rows, meta, name = one_process
    args = [*relevance_args, "--cache-dir", str(tmp_path)]
    job = cr.RelevanceJob(num_images=2, max_resolution=128)
    first = torchrun(2, [*args, "--max-rows", "20"])  # each rank stops at the end of its unit that reaches 20 rows
    assert first.returncode != 0 and "incomplete: rank 0 stopped" in first.stdout  # the ranks exit with STOPPED, torchrun with 1
    partial = os.path.join(str(tmp_path), name + ".incomplete")
    assert not os.path.exists(os.path.join(str(tmp_path), name))
    shares = [cr.read_rows(f"{partial}.rank{r}", job) for r in (0, 1)]
    assert all(20 <= len(s) <= 22 for s in shares) and not set(shares[0]) & set(shares[1])  # units of 3 rows (2 at a layer's end)
    for share in shares:  # each rank's rows are the one process's bits
        assert all(torch.equal(row, rows[i]) for i, row in share.items())
    assert main([*args, "--max-rows", "30"]) == STOPPED
    assert 30 <= len(cr.read_rows(partial, job)) <= 32
    out = ok(torchrun(2, args))
    assert "rank 0 of 2: 1/" in out and "by 2 ranks" in out and out.count("fs3 [232, 32]") == 1  # rank 0 alone reports
    assert torch.equal(fs3_files.load_fs3(os.path.join(str(tmp_path), name)), rows)  # the same file name, the same bits
    assert fs3_files.fs3_metadata(os.path.join(str(tmp_path), name)) == meta
    assert sorted(f for f in os.listdir(tmp_path) if not f.startswith("stats-")) == [name]  # no partial file, lock or temporary left


def test_units_are_whole_batches_and_a_resume_mid_unit_gives_the_same_bits(tmp_path, monkeypatch):
    g = tiny_generator()
    job = cr.RelevanceJob(num_images=2, max_resolution=8)
    units = cr.relevance_units(g, job, 6)
    # 4 probes a channel, batches of 6: 3 channels (12 probes) end on a batch boundary; the
    # 32-channel layers end with a unit of 2
    assert [u.stop - u.start for u in units[:11]] == [3] * 10 + [2] and (units[11].row, units[11].start) == (32, 0) and len(units) == 33
    assert [r for u in units for r in u.rows] == list(range(96))
    assert [u.stop - u.start for u in cr.relevance_units(g, cr.RelevanceJob(num_images=100), 16)][:2] == [2, 2]  # the reference's job
    encode = lambda x: torch.nn.functional.normalize(x.flatten(1)[:, :8] + x.flatten(1)[:, 8:16].square(), dim=-1)  # noqa: E731
    from styleclip_core.edits.global_directions import style_statistics

    stats = style_statistics(g, num_samples=500)
    full = cr.channel_relevance(g, encode, stats, job, 6)
    path = str(tmp_path / "partial")
    monkeypatch.setattr(cr, "SAVE_EVERY_S", 0)

    def stop(done, total, preview=None):
        if done >= 7:  # channel 7 is in the middle of the third unit
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cr.channel_relevance(g, encode, stats, job, 6, path, stop)
    assert sorted(cr.read_rows(path, job)) == list(range(7))
    tally = {}
    assert torch.equal(cr.channel_relevance(g, encode, stats, job, 6, path, tally=tally), full)
    assert tally["rendered"] == (96 - 6) * 4  # the unit of channels 6-8 again, then the rest


def test_partial_files_old_and_numbered(tmp_path):
    job = cr.RelevanceJob(num_images=2, max_resolution=8)
    path = str(tmp_path / "x.incomplete")
    # a file written before rows were numbered: fs3 only, rows 0 to n-1
    save_atomic({"fs3": torch.ones(3, 4)}, path, {"format": "styleclip-fs3", "job": json.dumps(job.record())})
    assert sorted(cr.RelevanceRows(path, job).by_row) == [0, 1, 2]
    # a rank's share (rows with gaps) is marked so that a job check that knows only leading rows fails
    share = cr.RelevanceRows(path + ".rank1", job)
    share.add(torch.zeros(2, 4), 5)
    share.save()
    _, meta = read_safetensors(path + ".rank1", "test")
    assert json.loads(meta["job"]) != job.record()
    assert sorted(cr.read_rows(path + ".rank1", job)) == [5, 6]
    open(path + ".rank1.partial", "w").close()  # a write in progress is not a partial file
    assert cr.partial_files(path) == [path, path + ".rank1"]
    with pytest.raises(ValueError, match="different relevance job"):
        cr.read_rows(path + ".rank1", cr.RelevanceJob(num_images=3, max_resolution=8))


def test_batch_split_and_no_group_means_alone(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun's variables without a process group (init not called): work alone
    assert distributed.world() == (1, 2) and distributed.group_world() == (0, 1) and not distributed.is_distributed()
    assert distributed.split_batch(3) == (0, 3) and distributed.on_main(lambda: 7) == 7 and distributed.all_gather_object(5) == [5]
    assert [distributed.split_batch(5, r, 2) for r in (0, 1)] == [(0, 3), (3, 5)]
    assert [distributed.split_batch(4, r, 4) for r in range(4)] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert distributed.split_batch(3, 0, 1) == (0, 3)
    with pytest.raises(ValueError, match="at least 4"):
        distributed.split_batch(2, 0, 4)


# ---- mapper training --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mapper_args(tiny_models_dir):
    """The coach's loss (CLIP + identity + latent L2) with the tiny stand-ins, Ranger; a global
    batch of 3 (ranks take 2 and 1) from 8 sampled faces (2 batches an epoch)."""
    m = tiny_models_dir
    return ["train-mapper", "--generator", os.path.join(m, "stylegan", "stylegan2-ffhq-config-f.pt"), "--clip", os.path.join(m, "openclip", "ViT-B-32.pt"),
            "--arcface", os.path.join(m, "arcface", "model_ir_se50.pth"), "--prompt", "a person with purple hair", "--sample-count", "8",
            "--batch-size", "3", "--report-every", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def one_process_mapper(mapper_args, tmp_path_factory):
    """Weights of one process after 4 steps (Ranger's un-rectified momentum steps) and after 8
    (rectified steps from 6 on, the first Lookahead synchronisation at 6), and the initial weights."""
    folder = tmp_path_factory.mktemp("mapper_one")
    path = str(folder / "m.safetensors")
    assert main([*mapper_args, "--steps", "4", "--out", path]) == 0
    shutil.copy(path, folder / "step4.safetensors")
    assert main([*mapper_args, "--steps", "8", "--out", path, "--if-exists", "resume"]) == 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        init = build_mapper("LevelsMapper", latent_dim=TINY_GENERATOR["style_dim"]).net.state_dict()
    return {"init": init, 4: weights(str(folder / "step4.safetensors")), 8: weights(path), "step4": str(folder / "step4.safetensors")}


def weights(path):
    return load_mapper(path)[0].net.state_dict()


def assert_same_training(ours, ref, init):
    """Equal to float rounding. The ranks compute their slices in smaller batches than one process
    (other kernels and sums: the activations differ in the last bits) and DDP sums the slices'
    gradients in another order; Adam's update divides each gradient element by its own RMS, so a
    last-bit difference in a small gradient element becomes a relative difference of the update of
    about that element's rounding error over its size. Measured (this setting, after 4 and 8
    steps, 2 ranks and the 2 -> 1 and 1 -> 2 rank resumes against one process at 1 thread): the
    weights (about 400, lr_mul-scaled, moved by about 1e-6 of themselves) are equal, the biases (0
    at the start) differ by at most 3.9e-7 of their tensor's largest update; one process at 2 and 4
    threads: 1.9e-7. With the prompt 'purple' instead: 9 of 49152 weights one rounding apart, the
    biases 2.8e-5 (threads 2.1e-7). Bound: 2 roundings of the value plus 1e-3 of the tensor's
    largest update (36x the largest spread seen). A wrong gradient scale (Ranger's first five steps
    move by lr x the gradient: halving it fails here) or wrong slices (other faces) move the
    biases by their whole update."""
    for k in ref:
        update = (ref[k] - init[k]).abs().max()
        assert update > 0, f"{k} did not move"
        bound = 2 * torch.finfo(torch.float32).eps * ref[k].abs() + 1e-3 * update
        worst = ((ours[k] - ref[k]).abs() - bound).max()
        assert worst <= 0, f"{k}: differs by up to {float((ours[k] - ref[k]).abs().max()):.3g}, update {float(update):.3g}"


def test_two_ranks_train_the_one_process_mapper(mapper_args, one_process_mapper, tmp_path):
    path = str(tmp_path / "m.safetensors")
    out = ok(torchrun(2, [*mapper_args, "--steps", "4", "--out", path]))
    assert out.count("step 4/4:") == 1 and "2 ranks" in out  # rank 0 alone reports, the global batch's losses
    assert_same_training(weights(path), one_process_mapper[4], one_process_mapper["init"])
    _, meta, _ = read_training_state(path)
    assert meta["step"] == 4 and meta["ranks"] == 2 and meta["options"]["batch_size"] == 3
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]  # one checkpoint, written by rank 0, no temporary left
    # the two-rank checkpoint continues in one process
    assert main([*mapper_args, "--steps", "8", "--out", path, "--if-exists", "resume"]) == 0
    assert_same_training(weights(path), one_process_mapper[8], one_process_mapper["init"])


def test_a_one_process_checkpoint_continues_on_two_ranks(mapper_args, one_process_mapper, tmp_path):
    path = str(tmp_path / "m.safetensors")
    shutil.copy(one_process_mapper["step4"], path)
    out = ok(torchrun(2, [*mapper_args, "--steps", "8", "--out", path, "--if-exists", "resume"]))
    assert "resumed at step 4" in out and out.count("step 8/8:") == 1
    assert_same_training(weights(path), one_process_mapper[8], one_process_mapper["init"])
    assert read_training_state(path)[1]["step"] == 8
