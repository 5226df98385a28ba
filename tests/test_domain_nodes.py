"""Train Domain (NADA) and Load Adapted Generator as ComfyUI runs them, with the tiny stand-ins:
checkpoints in models/stylegan that are never overwritten, resumed runs that continue the same
run, an adapted generator that renders, the loader's list and info, and a cancelled run that
leaves a complete, loadable checkpoint."""
import hashlib
import os

import pytest
import torch

TRAIN = dict(source_text="photo", target_text="sketch", if_exists="new numbered file", steps=3, batch_size=2, learning_rate=0.002,
             auto_layer_k=18, auto_layer_iters=1, auto_layer_batch=8, phase="default", lambda_direction=1.0, lambda_global=0.0,
             lambda_manifold=0.0, clip_weight=1.0, seed=0, save_every=2, preview_every=2)
LOAD = dict(ops_backend="auto", precision="fp32")


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models run faster on one thread


@pytest.fixture
def models(comfy):
    """(generator, CLIP) as the workflows load them; every file a test writes to models/stylegan is removed after it."""
    folder = comfy.folder_paths.get_folder_paths("stylegan")[0]
    before = set(os.listdir(folder))
    g = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", **LOAD).args[0]
    clip = comfy.run("StyleCLIP_LoadCLIP", clip_name="ViT-B-32.pt", architecture="auto", image_preprocessing="styleclip").args[0]
    yield g, clip
    for name in set(os.listdir(folder)) - before:
        os.remove(os.path.join(folder, name))


def _folder(comfy):
    return comfy.folder_paths.get_folder_paths("stylegan")[0]


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _options(comfy, node_id, name):
    return comfy.nodes[node_id].object_info()["input"]["required"][name][1]["options"]


def _weights(g):
    return {k: v.detach().cpu() for k, v in g.state_dict().items()}


def test_train_numbers_resumes_renders_and_loads(comfy, models):
    from comfy.utils import PROGRESS_LOG

    g, clip = models
    PROGRESS_LOG.clear()
    first = comfy.run("StyleCLIP_TrainDomain", generator=g, clip=clip, name="nada_node", **TRAIN)
    assert PROGRESS_LOG == [(1, 3, False), (2, 3, True), (3, 3, True)]  # the preview every 2 steps and at the end
    path = os.path.join(_folder(comfy), "nada_node.safetensors")
    written = _sha(path)
    second = comfy.run("StyleCLIP_TrainDomain", generator=g, clip=clip, name="nada_node", **TRAIN)
    assert first.args[1] == "nada_node.safetensors" and second.args[1] == "nada_node_00001.safetensors"
    assert _sha(path) == written  # 'new numbered file' never touches the existing one
    assert "'photo' -> 'sketch', step 3/3" in first.args[2] and "directional" in first.args[2] and first.ui["text"] == (first.args[2],)

    resumed = comfy.run("StyleCLIP_TrainDomain", generator=g, clip=clip, name="nada_node", **{**TRAIN, "if_exists": "resume", "steps": 5})
    assert resumed.args[1] == "nada_node.safetensors" and "step 5/5 (resumed at step 3)" in resumed.args[2]
    # the same run: five steps at once give the same weights, bit for bit (per-step seeded draws, Adam's state restored)
    straight = comfy.run("StyleCLIP_TrainDomain", generator=g, clip=clip, name="nada_straight", **{**TRAIN, "steps": 5, "save_every": 0})
    for key, value in _weights(straight.args[0]).items():
        assert torch.equal(_weights(resumed.args[0])[key], value), key
    again = comfy.run("StyleCLIP_TrainDomain", generator=g, clip=clip, name="nada_node", **{**TRAIN, "if_exists": "resume", "steps": 5})
    assert "step 5/5 (resumed at step 5)" in again.args[2] and "last step" not in again.args[2]  # nothing left: loaded as it is
    with pytest.raises(ValueError, match=r"cannot resume nada_node.safetensors: .*target 'sketch' \(checkpoint\) vs 'cartoon' \(now\)"):
        comfy.run("StyleCLIP_TrainDomain", generator=g, clip=clip, name="nada_node", **{**TRAIN, "if_exists": "resume", "target_text": "cartoon"})

    # the adapted generator renders the original's latents, differently
    adapted = resumed.args[0]
    assert adapted.adaptation["target_text"] == "sketch" and adapted.adaptation["steps"] == 5
    latents = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=4, batch_size=2, truncation_psi=0.7).args[0]
    render = dict(latents=latents, noise="const", noise_seed=0, chunk_size=2)
    before = comfy.run("StyleCLIP_Synthesize", generator=g, **render).args[0]
    after = comfy.run("StyleCLIP_Synthesize", generator=adapted, **render).args[0]
    assert after.shape == before.shape == (2, 64, 64, 3) and torch.isfinite(after).all()
    assert (after - before).abs().amax(dim=(1, 2, 3)).min() > 1e-3

    # both loaders list the checkpoints; Load Adapted Generator only the adapted files
    listed = _options(comfy, "StyleCLIP_LoadAdaptedGenerator", "generator_name")
    assert {"nada_node.safetensors", "nada_node_00001.safetensors", "nada_straight.safetensors"} <= set(listed)
    assert "stylegan2-ffhq-config-f.pt" not in listed
    assert "nada_node.safetensors" in _options(comfy, "StyleCLIP_LoadGenerator", "generator_name")
    loaded, info = comfy.run("StyleCLIP_LoadAdaptedGenerator", generator_name="nada_node.safetensors", **LOAD).args
    assert "'photo' -> 'sketch', 5 steps of StyleGAN-NADA from stylegan2-ffhq-config-f.pt" in info
    for key, value in _weights(adapted).items():
        assert torch.equal(_weights(loaded)[key], value), key
    plain = comfy.run("StyleCLIP_LoadGenerator", generator_name="nada_node.safetensors", **LOAD).args[0]
    assert torch.equal(comfy.run("StyleCLIP_Synthesize", generator=plain, **render).args[0], after)


def test_second_clip(comfy, models):
    g, clip = models
    other = comfy.run("StyleCLIP_LoadCLIP", clip_name="ViT-B-32.pt", architecture="auto", image_preprocessing="normalized").args[0]
    out = comfy.run("StyleCLIP_TrainDomain", generator=g, clip=clip, name="nada_two_clips", clip_2=other, clip_2_weight=0.5,
                    **{**TRAIN, "steps": 1})
    assert list(out.args[0].adaptation["settings"]["clip_weights"]) == [1.0, 0.5]
    assert "step 1/1" in out.args[2]


def test_listing_skips_other_and_unreadable_files(comfy, models):
    folder = _folder(comfy)
    with open(os.path.join(folder, "broken.safetensors"), "wb") as f:
        f.write(b"\xff" * 64)  # no safetensors header
    comfy.run("StyleCLIP_ConvertGenerator", generator_name="stylegan2-ffhq-config-f.pt")  # a generator without adaptation
    listed = _options(comfy, "StyleCLIP_LoadAdaptedGenerator", "generator_name")
    assert "broken.safetensors" not in listed and "stylegan2-ffhq-config-f.safetensors" not in listed
    with pytest.raises(ValueError, match="holds no domain adaptation"):
        comfy.run("StyleCLIP_LoadAdaptedGenerator", generator_name="stylegan2-ffhq-config-f.safetensors", unvalidated=True, **LOAD)


def test_cancel_keeps_a_complete_checkpoint(comfy, models, monkeypatch):
    """ComfyUI's cancel arrives through the progress bar: the run stops, and the file holds the
    last step done, loadable as a generator and resumable."""
    import comfy.model_management as mm
    from comfy.utils import ProgressBar

    from styleclip_core.formats.files import read_safetensors

    g, clip = models
    update = ProgressBar.update_absolute

    def cancel_at_3(self, value, total=None, preview=None):
        update(self, value, total, preview)
        if value == 3:
            mm.interrupt_current_processing(True)

    monkeypatch.setattr(ProgressBar, "update_absolute", cancel_at_3)
    with pytest.raises(mm.InterruptProcessingException):
        comfy.run("StyleCLIP_TrainDomain", generator=g, clip=clip, name="nada_cancelled", **{**TRAIN, "steps": 8, "save_every": 0})
    monkeypatch.setattr(ProgressBar, "update_absolute", update)
    assert not mm.processing_interrupted()
    folder = _folder(comfy)
    assert [n for n in os.listdir(folder) if n.startswith("nada_cancelled")] == ["nada_cancelled.safetensors"]  # no partial file
    _, meta = read_safetensors(os.path.join(folder, "nada_cancelled.safetensors"), "a checkpoint")
    assert '"step": 3' in meta["training"]
    loaded, info = comfy.run("StyleCLIP_LoadAdaptedGenerator", generator_name="nada_cancelled.safetensors", **LOAD).args
    assert "3 steps" in info and loaded.adaptation["steps"] == 3
    resumed = comfy.run("StyleCLIP_TrainDomain", generator=g, clip=clip, name="nada_cancelled", **{**TRAIN, "if_exists": "resume", "steps": 4})
    assert "step 4/4 (resumed at step 3)" in resumed.args[2]
