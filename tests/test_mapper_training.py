"""Mapper training: Ranger's maths, the coach's loss, learning, checkpoints, resume, bad sources, node."""
import math
import os

import pytest
import torch

from standins import stand_in_clip
from styleclip_core.edits import losses
from styleclip_core.formats.clip_files import load_clip
from styleclip_core.formats.arcface_files import load_arcface
from styleclip_core.formats.latent_files import load_latent_folder, save_latents
from styleclip_core.models.latents import Latents, sample_latents
from styleclip_core.formats.mapper_files import load_mapper, save_mapper
from styleclip_core.edits.mapper_training import MapperTrainer, TrainingOptions, ranger, read_training_state, train_mapper
from styleclip_core.edits.training_checkpoints import checkpoint_path
from styleclip_core.formats.tiny_models import tiny_generator


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models run faster on one thread


@pytest.fixture(scope="module")
def g():
    return tiny_generator()


@pytest.fixture(scope="module")
def coach_loss():
    """StyleCLIP's mapper loss with the stand-in CLIP (fast; its prompts differ)."""
    clip = stand_in_clip(seed=3)
    return losses.LossSet().add(losses.ClipLoss(clip, "a person with purple hair")).add(losses.LatentL2Loss(0.8, "mean"))


def weights(mapper):
    return {k: v.detach().clone() for k, v in mapper.net.state_dict().items()}


# ---- Ranger ---------------------------------------------------------------------------------


def ranger_by_the_paper(params, grad_of, steps, lr=0.5, b1=0.95, b2=0.999, eps=1e-5, k=6, alpha=0.5):
    """Ranger 20.4.11 written from its published parts: gradient centralisation (Yong et al. 2020)
    on gradients of 2+ dims; RAdam (Liu et al. 2020) with the rectified step when the SMA length
    exceeds 5 and an un-rectified momentum step before; Lookahead (Zhang et al. 2019) whose slow
    weights start at the initial weights. Returns the fast weights after every step."""
    fast = [p.clone() for p in params]
    slow = [p.clone() for p in params]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    rho_inf = 2 / (1 - b2) - 1
    out = []
    for t in range(1, steps + 1):
        for i, grad in enumerate(grad_of(fast)):
            if grad.ndim > 1:
                grad = grad - grad.mean(dim=tuple(range(1, grad.ndim)), keepdim=True)
            m[i] = b1 * m[i] + (1 - b1) * grad
            v[i] = b2 * v[i] + (1 - b2) * grad * grad
            rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
            if rho > 5:
                rect = math.sqrt((1 - b2**t) * (rho - 4) / (rho_inf - 4) * (rho - 2) / rho * rho_inf / (rho_inf - 2))
                fast[i] = fast[i] - lr * rect / (1 - b1**t) * m[i] / (v[i].sqrt() + eps)
            else:
                fast[i] = fast[i] - lr / (1 - b1**t) * m[i]
            if t % k == 0:
                slow[i] = slow[i] + alpha * (fast[i] - slow[i])
                fast[i] = slow[i].clone()
        out.append([f.clone() for f in fast])
    return out


def test_ranger_matches_its_published_algorithm():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 5, generator=gen, dtype=torch.float64), torch.randn(8, 6, generator=gen, dtype=torch.float64)
    start = [torch.randn(6, 5, generator=gen, dtype=torch.float64), torch.randn(6, generator=gen, dtype=torch.float64)]

    def loss_of(w, b):
        return (torch.tanh(x @ w.t() + b) - y).square().sum()

    def grad_of(params):
        params = [p.clone().requires_grad_(True) for p in params]
        return torch.autograd.grad(loss_of(*params), params)

    steps = 14  # RAdam's un-rectified and rectified branches, and two Lookahead synchronisations
    rho = [1999 - 2 * t * 0.999**t / (1 - 0.999**t) for t in range(1, steps + 1)]
    assert min(rho) <= 5 < max(rho)
    expected = ranger_by_the_paper(start, grad_of, steps)
    params = [torch.nn.Parameter(p.clone()) for p in start]
    optimizer = ranger(params)
    for t in range(steps):
        for p in params:
            p.grad = None
        loss_of(*params).backward()
        optimizer.step()
        for ours, theirs in zip(params, expected[t]):
            torch.testing.assert_close(ours.detach(), theirs, atol=1e-12, rtol=1e-10, msg=f"step {t + 1}")


# ---- loss -----------------------------------------------------------------------------------


def test_latent_l2_mean_is_the_coach_mse(g):
    gen = torch.Generator().manual_seed(1)
    a, b = (torch.randn(3, g.n_latent, g.style_dim, generator=gen) for _ in range(2))
    wa, wb = Latents(w_plus=a), Latents(w_plus=b)
    per_sample = losses.latent_sq_distance(wa, wb, "mean")
    # means of 1920 squares (~2) in two orders: measured 2.4e-7 (2 ulp); float32 default bound
    torch.testing.assert_close(per_sample.mean(), torch.nn.functional.mse_loss(a, b), atol=1e-5, rtol=1.3e-6)
    sa, sb = Latents(styles=g.styles(a)), Latents(styles=g.styles(b))
    coach = sum(torch.nn.functional.mse_loss(x[:, None], y[:, None]) for x, y in zip(sa.styles, sb.styles))  # the coach's [B, 1, C] layers
    # a sum of 14 layer means (~27) in two orders: measured 1.9e-6 to 3.8e-6 (ratio 0.08)
    torch.testing.assert_close(losses.latent_sq_distance(sa, sb, "mean").mean(), coach, atol=1e-5, rtol=1.3e-6)
    assert losses.LatentL2Loss(0.8, "mean").describe() == "latent L2 (mean)" and losses.LatentL2Loss().describe() == "latent L2"
    with pytest.raises(ValueError, match="reduction"):
        losses.LatentL2Loss(1.0, "max")


# ---- learning -------------------------------------------------------------------------------


def test_loss_falls_with_tiny_clip_and_arcface(g, tiny_models_dir, tmp_path):
    clip = load_clip(os.path.join(tiny_models_dir, "openclip", "ViT-B-32.pt"))
    arcface = load_arcface(os.path.join(tiny_models_dir, "arcface", "model_ir_se50.pth"))
    loss = losses.LossSet().add(losses.ClipLoss(clip, "a person with purple hair")).add(losses.IdentityLoss(arcface, 0.1)).add(losses.LatentL2Loss(0.8, "mean"))
    # One batch of two faces, so every step sees the same faces and the curve shows learning, not
    # batch-to-batch variation. Adam (the coach's other choice): Ranger's rectified warm-up moves
    # the mapper's lr_mul-scaled weights by about 1 % in its first few dozen steps.
    result = train_mapper(g, sample_latents(g, 2, 0, 0.7), loss, str(tmp_path / "m.safetensors"), 30, TrainingOptions(optimizer="adam"), save_every=0)
    total = [h["loss"] for h in result.history]
    clip_part = [h["CLIP 'a person with purple hair'"] for h in result.history]
    assert set(result.history[0]) == {"loss", "CLIP 'a person with purple hair'", "identity (ArcFace)", "latent L2 (mean)"}
    assert total[-1] < total[0] - 3e-3 and clip_part[-1] < clip_part[0]
    assert sum(b < a for a, b in zip(total, total[1:])) >= 25
    assert result.history[0]["latent L2 (mean)"] > 0  # the fresh mapper already edits (as the reference's does)


# ---- checkpoints and resume ---------------------------------------------------------------------


class Stop(Exception):
    pass


def stop_at(step):
    def progress(done, total, preview):
        if done == step:
            raise Stop

    return progress


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(g, coach_loss, tmp_path):
    codes = sample_latents(g, 5, 3, 0.7)  # 2 batches per epoch: resuming must restore the shuffled order
    options = TrainingOptions(seed=5)
    straight = train_mapper(g, codes, coach_loss, str(tmp_path / "a.safetensors"), 9, options, save_every=0)
    path = str(tmp_path / "b.safetensors")
    with pytest.raises(Stop):
        train_mapper(g, codes, coach_loss, path, 9, options, save_every=0, progress=stop_at(4))
    mapper, meta, state = read_training_state(path)
    assert meta["step"] == 4 and any(k.endswith("lookahead_slow_buff") for k in state)
    loaded, decoder = load_mapper(path)  # what Load Latent Mapper reads: the mapper alone
    assert decoder is None and set(weights(loaded)) == set(weights(straight.mapper))
    resumed = train_mapper(g, codes, coach_loss, path, 9, options, resume=True, save_every=0)
    assert resumed.resumed_from == 4 and resumed.step == 9 and len(resumed.history) == 5
    for key, value in weights(straight.mapper).items():
        assert torch.equal(weights(resumed.mapper)[key], value), key
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history[4:]]
    again, _ = load_mapper(path)
    for key, value in weights(straight.mapper).items():
        assert torch.equal(weights(again)[key], value), key
    finished = train_mapper(g, codes, coach_loss, path, 9, options, resume=True)  # nothing left to do
    assert finished.history == [] and finished.step == 9


def test_a_crash_leaves_the_last_checkpoint(g, coach_loss, tmp_path):
    class Crash(losses.LossTerm):
        kind = "crash"

        def __init__(self):
            super().__init__(1.0)
            self.calls = 0

        def prepare(self, ctx):
            self.calls += 1
            if self.calls == 6:
                raise RuntimeError("out of memory")
            return lambda c: torch.zeros(c.image.shape[0])

    path = str(tmp_path / "crash.safetensors")
    with pytest.raises(RuntimeError, match="out of memory"):
        train_mapper(g, sample_latents(g, 4, 0), coach_loss.add(Crash()), path, 10, save_every=2)
    _, meta, _ = read_training_state(path)
    assert meta["step"] == 4 and os.listdir(tmp_path) == ["crash.safetensors"]  # no .partial left behind


def test_resume_refuses_another_run(g, coach_loss, tmp_path):
    codes = sample_latents(g, 4, 0)
    path = str(tmp_path / "m.safetensors")
    train_mapper(g, codes, coach_loss, path, 2)
    with pytest.raises(ValueError, match=r"learning_rate 0.5 \(checkpoint\) vs 0.1 \(now\)"):
        train_mapper(g, codes, coach_loss, path, 4, TrainingOptions(learning_rate=0.1), resume=True)
    with pytest.raises(ValueError, match="the training latents differ"):
        train_mapper(g, sample_latents(g, 4, 1), coach_loss, path, 4, resume=True)
    with pytest.raises(ValueError, match="the loss differs"):
        train_mapper(g, codes, coach_loss.add(losses.LatentL2Loss()), path, 4, resume=True)
    with pytest.raises(ValueError, match="the generator weights differ"):
        train_mapper(tiny_generator(seed=1), codes, coach_loss, path, 4, resume=True)
    with pytest.raises(FileExistsError):
        train_mapper(g, codes, coach_loss, path, 4)
    plain = str(tmp_path / "plain.safetensors")
    save_mapper(load_mapper(path)[0], plain)
    with pytest.raises(ValueError, match="without training state"):
        train_mapper(g, codes, coach_loss, plain, 4, resume=True)


def test_checkpoint_names(tmp_path):
    folder = str(tmp_path)
    assert checkpoint_path(folder, "hair") == (os.path.join(folder, "hair.safetensors"), False)
    open(os.path.join(folder, "hair.safetensors"), "w").close()
    open(os.path.join(folder, "hair_00001.safetensors"), "w").close()
    assert checkpoint_path(folder, "hair.safetensors", "number") == (os.path.join(folder, "hair_00002.safetensors"), False)
    assert checkpoint_path(folder, "hair", "resume") == (os.path.join(folder, "hair.safetensors"), True)
    assert checkpoint_path(folder, "hair", "overwrite") == (os.path.join(folder, "hair.safetensors"), False)
    for bad in ("../hair", "a/b", "", ".."):
        with pytest.raises(ValueError, match="without folders"):
            checkpoint_path(folder, bad)


# ---- mapper types and sources -------------------------------------------------------------------


def test_levels_and_stylespace_mappers(g, coach_loss, tmp_path):
    codes = sample_latents(g, 2, 0)
    no_medium = train_mapper(g, codes, coach_loss, str(tmp_path / "l.safetensors"), 2, TrainingOptions(medium=False))
    assert not any(k.startswith("medium_mapping") for k in weights(no_medium.mapper))
    assert torch.count_nonzero(no_medium.mapper.delta(codes, g).w_plus[:, 4:8]) == 0
    assert load_mapper(str(tmp_path / "l.safetensors"))[0].options["no_medium_mapper"]
    s = train_mapper(g, codes, coach_loss, str(tmp_path / "s.safetensors"), 2, TrainingOptions(mapper_type="WithoutToRGBStyleSpaceMapper"))
    edited = s.mapper.edit(codes, g)
    for layer, before, after in zip(g.style_layers, codes.to_styles(g), edited.styles):
        assert torch.equal(before, after) == layer.is_torgb
    loaded, _ = load_mapper(str(tmp_path / "s.safetensors"))
    assert loaded.mapper_type == "WithoutToRGBStyleSpaceMapper" and loaded.options["work_in_stylespace"]
    on_styles = train_mapper(g, Latents(styles=codes.to_styles(g)), coach_loss, str(tmp_path / "f.safetensors"), 2, TrainingOptions(mapper_type="FullStyleSpaceMapper"))
    assert on_styles.step == 2 and all(math.isfinite(h["loss"]) for h in on_styles.history)


def test_bad_training_sources(g, coach_loss, tmp_path):
    path = str(tmp_path / "m.safetensors")
    other = tiny_generator(size=32)
    with pytest.raises(ValueError, match="training latents: .*different generator"):
        MapperTrainer(g, sample_latents(other, 4, 0), coach_loss)
    with pytest.raises(ValueError, match="trains on W\\+ latents; these are StyleSpace codes"):
        MapperTrainer(g, Latents(styles=g.styles(sample_latents(g, 4, 0).w_plus)), coach_loss)
    with pytest.raises(ValueError, match="fewer than one batch of 2"):
        MapperTrainer(g, sample_latents(g, 1, 0), coach_loss)
    with pytest.raises(ValueError, match="no term with a non-zero weight"):
        MapperTrainer(g, sample_latents(g, 4, 0), losses.LossSet())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no latent files"):
        load_latent_folder(str(empty))
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_latent_folder(str(tmp_path / "missing"))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    save_latents(sample_latents(g, 2, 0), str(mixed / "a.safetensors"))
    torch.save(sample_latents(other, 1, 0).w_plus, mixed / "b.pt")
    with pytest.raises(ValueError, match="b.pt: w\\+ codes shaped .* must come from one generator"):
        load_latent_folder(str(mixed))
    os.remove(mixed / "b.pt")
    torch.save(sample_latents(g, 1, 5).w_plus[0], mixed / "b.pt")  # a single [n, D] code, as StyleCLIP saves one
    folder = load_latent_folder(str(mixed))
    assert folder.batch_size == 3 and not os.path.exists(path)


# ---- node -----------------------------------------------------------------------------------


def test_train_node_numbers_resumes_and_loads(comfy):
    g = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="auto", precision="fp32").args[0]
    clip = comfy.run("StyleCLIP_LoadCLIP", clip_name="ViT-B-32.pt", architecture="auto", image_preprocessing="styleclip").args[0]
    loss = comfy.run("StyleCLIP_CLIPLoss", clip=clip, text="purple hair", weight=1.0).args[0]
    loss = comfy.run("StyleCLIP_LatentL2Loss", weight=0.8, loss=loss, reduction="mean").args[0]
    args = dict(generator=g, loss=loss, name="node_test", if_exists="new numbered file", steps=3, mapper_type="LevelsMapper", coarse=True,
                medium=True, fine=True, batch_size=2, learning_rate=0.5, optimizer="ranger", seed=1, sample_count=6, truncation_psi=0.7,
                save_every=2, preview_every=2)
    from comfy.utils import PROGRESS_LOG

    PROGRESS_LOG.clear()
    first = comfy.run("StyleCLIP_TrainMapper", **args)
    second = comfy.run("StyleCLIP_TrainMapper", **args)
    resumed = comfy.run("StyleCLIP_TrainMapper", **{**args, "if_exists": "resume", "steps": 5})
    assert PROGRESS_LOG[:3] == [(1, 3, False), (2, 3, True), (3, 3, True)]
    assert first.args[1] == "node_test.safetensors" and second.args[1] == "node_test_00001.safetensors"
    assert resumed.args[1] == "node_test.safetensors" and "step 5/5 (resumed at step 3)" in resumed.args[2]
    mapper, bundled, info = comfy.run("StyleCLIP_LoadMapper", mapper_name="node_test.safetensors").args
    assert bundled is None and "'purple hair'" in info
    for key, value in weights(resumed.args[0]).items():
        assert torch.equal(weights(mapper)[key], value.cpu())
    codes = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=9, batch_size=2, truncation_psi=0.7).args[0]
    edited = comfy.run("StyleCLIP_ApplyMapper", generator=g, mapper=mapper, latents=codes, strength=1.0).args[0]
    assert not torch.equal(edited.w_plus, codes.w_plus)
    folder = os.path.join(comfy.folder_paths.get_input_directory(), "train_codes")
    os.makedirs(folder)
    for i in range(2):
        save_latents(codes.slice(i, i + 1), os.path.join(folder, f"face_{i}.safetensors"))
    joined = comfy.run("StyleCLIP_LoadLatentFolder", folder="train_codes").args[0]
    assert torch.equal(joined.w_plus, codes.w_plus)
    trained = comfy.run("StyleCLIP_TrainMapper", **{**args, "name": "from_folder", "steps": 1, "latents": joined})
    assert "step 1/1" in trained.args[2]
    for f in ("node_test.safetensors", "node_test_00001.safetensors", "from_folder.safetensors"):
        os.remove(os.path.join(comfy.folder_paths.get_folder_paths("styleclip_mappers")[0], f))
