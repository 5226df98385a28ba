"""Every loader against every kind of unreadable file (issue 13, "Files").

One table: for each model kind and file format, the file made zero bytes, text (an error page
saved under the model's name), truncated, a pickle that would run code, a tensor of a wrong
shape, NaN weights. Each must be refused with a ``CheckpointError`` (``FileNotFoundError`` for an
absent file) whose message names the file and never repeats PyTorch's advice to retry with
``weights_only=False``; no pickle's code may ever run.

``outcome`` sorts each case as clear / unclear (another exception, or a message without the file
name or with the advice) / silent (loaded); ``python tests/test_bad_files.py`` prints the counts.
"""
from __future__ import annotations

import math
import os
import pickle
import shutil

import numpy as np
import pytest
import torch

from styleclip_core.errors import CheckpointError

ADVICE = "weights_only=False"
HTML = b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>Download anyway</body></html>\n"


class Evil:
    """A pickle that runs a shell command when unpickled by a plain ``pickle.load``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ---- how each kind is loaded --------------------------------------------------------------------


def _tiny_g():
    from styleclip_core.formats.tiny_models import tiny_generator

    return tiny_generator()


def load_fs3_for_generator(path):
    """What the Channel Relevance node does with an fs3 file: read it and check it against the generator."""
    from styleclip_core.edits.relevance_cache import relevance_from_file

    return relevance_from_file(path, _tiny_g(), [os.path.join(os.path.dirname(path), "cache")], statistics_samples=256)


def load_direction(path):
    from styleclip_core.edits.directions import Direction

    return Direction.load(path)


def _loader(kind):
    from styleclip_core.formats import arcface_files, clip_files, e4e_files, face_parser_files, generator_files, latent_files, mapper_files

    return {
        "generator": generator_files.load_generator,
        "e4e": e4e_files.load_e4e,
        "clip": clip_files.load_clip,
        "arcface": arcface_files.load_arcface,
        "mapper": mapper_files.load_mapper,
        "face_parser": face_parser_files.load_face_parser,
        "latents": latent_files.load_latents,
        "fs3": load_fs3_for_generator,
        "direction": load_direction,
    }[kind]


# ---- good files of every kind and format ---------------------------------------------------------

# (kind, format label) -> (file name, nested key of one floating tensor to corrupt or None for the whole object)
SOURCES = {
    ("generator", "pt"): ("stylegan2-ffhq-config-f.pt", ("g_ema", "conv1.conv.modulation.weight")),
    ("generator", "ada.pkl"): ("network-snapshot.pkl", None),
    ("generator", "tf.pkl"): ("stylegan2-ffhq-config-f.pkl", None),
    ("generator", "safetensors"): ("generator.safetensors", ("conv1.conv.modulation.weight",)),
    ("e4e", "pt"): ("e4e_ffhq_encode.pt", ("state_dict", "encoder.styles.0.linear.weight")),
    ("clip", "torchscript.pt"): ("ViT-B-32.pt", None),
    ("clip", "state.pt"): ("clip_state.pt", ("visual.ln_post.weight",)),
    ("clip", "safetensors"): ("clip.safetensors", ("visual.ln_post.weight",)),
    ("arcface", "pth"): ("model_ir_se50.pth", ("output_layer.0.weight",)),
    ("arcface", "safetensors"): ("model_ir_se50.safetensors", ("output_layer.0.weight",)),
    ("mapper", "pt"): ("purple_hair.pt", ("state_dict", "mapper.course_mapping.mapping.2.weight")),
    ("mapper", "safetensors"): ("purple_hair.safetensors", ("course_mapping.mapping.2.weight",)),
    ("face_parser", "pth"): ("79999_iter.pth", ("ffm.convblk.bn.weight",)),
    ("face_parser", "safetensors"): ("79999_iter.safetensors", ("ffm.convblk.bn.weight",)),
    ("latents", "pt"): ("latents.pt", ()),
    ("latents", "safetensors"): ("latents.safetensors", ("w_plus",)),
    ("fs3", "npy"): ("fs3.npy", ()),
    ("fs3", "safetensors"): ("fs3.safetensors", ("fs3",)),
    ("direction", "safetensors"): ("direction.safetensors", ("delta.0",)),  # ours (Save Direction)
    ("direction", "npy"): ("boundary.npy", ()),  # an InterFaceGAN boundary [1, D]
    ("direction", "pt"): ("boundary.pt", ()),
}
TINY_FILES = {"generator": "stylegan/stylegan2-ffhq-config-f.pt", "e4e": "e4e/e4e_ffhq_encode.pt", "clip": "openclip/ViT-B-32.pt",
              "arcface": "arcface/model_ir_se50.pth", "mapper": "styleclip_mappers/purple_hair.pt", "face_parser": "face_parsing/79999_iter.pth",
              "fs3": "styleclip_global/fs3.npy"}


def _write_safetensors(tensors, path, meta=None):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)


def _read_safetensors(path):
    from safetensors.torch import load_file, safe_open

    with safe_open(path, "pt") as f:
        meta = f.metadata()
    return load_file(path), meta


@pytest.fixture(scope="session")
def sources(tiny_models_dir, tmp_path_factory):
    """(kind, format) -> a good file of that kind and format."""
    return make_sources(tiny_models_dir, str(tmp_path_factory.mktemp("good_files")))


def make_sources(tiny_models_dir, d):
    from styleclip_core.formats import tiny_models  # noqa: F811
    from styleclip_core.formats.clip_files import read_clip_state
    from styleclip_core.formats.fs3_files import save_fs3
    from styleclip_core.formats.generator_files import save_generator
    from styleclip_core.formats.latent_files import save_latents
    from styleclip_core.formats.mapper_files import load_mapper, save_mapper
    from styleclip_core.models.latents import Latents

    out = {}
    for (kind, fmt), (name, _) in SOURCES.items():
        out[(kind, fmt)] = os.path.join(d, name)
    tiny = lambda kind: os.path.join(tiny_models_dir, TINY_FILES[kind])  # noqa: E731
    for (kind, fmt), path in out.items():
        if fmt in ("pt", "pth", "npy", "torchscript.pt") and kind not in ("latents", "direction"):
            shutil.copy(tiny(kind), path)
    tiny_models.write_ada_pkl(_tiny_g(), out[("generator", "ada.pkl")])
    tiny_models.write_tf_pkl(_tiny_g(), out[("generator", "tf.pkl")])
    save_generator(_tiny_g(), out[("generator", "safetensors")])
    clip_state = read_clip_state(tiny("clip"))[0]
    torch.save(clip_state, out[("clip", "state.pt")])
    _write_safetensors(clip_state, out[("clip", "safetensors")])
    for kind in ("arcface", "face_parser"):
        state = torch.load(tiny(kind), weights_only=True)
        _write_safetensors(state, out[(kind, "safetensors")])
    save_mapper(load_mapper(tiny("mapper"))[0], out[("mapper", "safetensors")])
    w = _tiny_g().mean_latent(16)[None].expand(2, 8, -1).clone()
    torch.save(w, out[("latents", "pt")])
    save_latents(Latents(w_plus=w), out[("latents", "safetensors")])
    save_fs3(torch.from_numpy(np.load(tiny("fs3"))), out[("fs3", "safetensors")])
    from styleclip_core.edits.directions import Direction

    boundary = np.random.RandomState(0).randn(1, 64)
    np.save(out[("direction", "npy")], boundary)
    torch.save(torch.from_numpy(boundary), out[("direction", "pt")])
    Direction("w", [torch.from_numpy(boundary[0])]).save(out[("direction", "safetensors")])
    return out


# ---- corruptions -------------------------------------------------------------------------------


def _get(obj, key):
    for k in key:
        obj = obj[k]
    return obj


def _set(obj, key, value):
    if not key:
        return value
    _get(obj, key[:-1])[key[-1]] = value
    return obj


def _mutate(src, dst, kind, fmt, change):
    """Copy ``src`` to ``dst`` with ``change(tensor) -> tensor`` applied to the kind's chosen tensor."""
    key = SOURCES[(kind, fmt)][1]
    if fmt == "torchscript.pt":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.load(src)  # our own tiny stand-in, trusted
            with torch.no_grad():
                p = module.visual.ln_post.weight
                new = change(p.detach().clone())
                p.copy_(new)
            module.save(dst)
        return
    if fmt.endswith(".pkl"):
        from styleclip_core.formats import tiny_models

        g = _tiny_g()
        p = g.conv1.conv.modulation.weight
        new = change(p.detach().clone())
        g.conv1.conv.modulation.weight = torch.nn.Parameter(new, requires_grad=False)
        (tiny_models.write_ada_pkl if fmt == "ada.pkl" else tiny_models.write_tf_pkl)(g, dst)
        return
    if fmt == "safetensors":
        tensors, meta = _read_safetensors(src)
        _write_safetensors(_set(tensors, key, change(_get(tensors, key))), dst, meta)
        return
    if fmt == "npy":
        np.save(dst, change(torch.from_numpy(np.load(src))).numpy())
        return
    obj = torch.load(src, weights_only=True)
    torch.save(_set(obj, key, change(_get(obj, key))), dst)


def _nan(t):
    t = t.clone()
    t.view(-1)[t.numel() // 2] = math.nan
    return t


def _inf(t):
    t = t.clone()
    t.view(-1)[0] = math.inf
    return t


def _wrong_shape(t):
    return torch.randn(*t.shape[:-1], t.shape[-1] + 3) if t.ndim else torch.randn(3)


def make_missing(src, dst, kind, fmt):
    pass


def make_zero(src, dst, kind, fmt):
    open(dst, "wb").close()


def make_text(src, dst, kind, fmt):
    with open(dst, "wb") as f:
        f.write(b"hello world\n")


def make_html(src, dst, kind, fmt):
    with open(dst, "wb") as f:
        f.write(HTML)


def make_lfs_pointer(src, dst, kind, fmt):
    with open(dst, "wb") as f:
        f.write(b"version https://git-lfs.github.com/spec/v1\noid sha256:0123abcd\nsize 1024\n")


def make_truncated(src, dst, kind, fmt):
    with open(src, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(data[: len(data) // 2])


def make_evil_raw(src, dst, kind, fmt):
    with open(dst, "wb") as f:
        pickle.dump(Evil(dst + ".marker"), f)


def make_evil_torch(src, dst, kind, fmt):
    if fmt == "npy":
        np.save(dst, np.array([Evil(dst + ".marker")], dtype=object), allow_pickle=True)
    else:
        torch.save({"state_dict": Evil(dst + ".marker")}, dst)


def make_nan(src, dst, kind, fmt):
    _mutate(src, dst, kind, fmt, _nan)


def make_inf(src, dst, kind, fmt):
    _mutate(src, dst, kind, fmt, _inf)


def make_all_nan(src, dst, kind, fmt):
    _mutate(src, dst, kind, fmt, lambda t: torch.full_like(t, math.nan))


def make_wrong_shape(src, dst, kind, fmt):
    _mutate(src, dst, kind, fmt, _wrong_shape)


def make_rank1(src, dst, kind, fmt):
    _mutate(src, dst, kind, fmt, lambda t: t.reshape(-1))


def make_rank3(src, dst, kind, fmt):
    _mutate(src, dst, kind, fmt, lambda t: t[None])


def make_extra_rows(src, dst, kind, fmt):
    _mutate(src, dst, kind, fmt, lambda t: torch.cat([t, t[:7]]))


def make_strings(src, dst, kind, fmt):
    np.save(dst, np.load(src).astype(str))


GENERIC = {"missing": make_missing, "zero": make_zero, "text": make_text, "html": make_html, "lfs_pointer": make_lfs_pointer, "truncated": make_truncated}
PICKLED = {"evil_raw": make_evil_raw, "evil_torch": make_evil_torch}
CONTENT = {"wrong_shape": make_wrong_shape, "nan": make_nan, "inf": make_inf}
FS3 = {"rank1": make_rank1, "rank3": make_rank3, "extra_rows": make_extra_rows, "all_nan": make_all_nan}


def cases():
    out = []
    for kind, fmt in SOURCES:
        makers = dict(GENERIC)
        if fmt != "safetensors":
            makers.update(PICKLED)
        if fmt == "tf.pkl" or fmt == "ada.pkl":
            makers.pop("evil_torch")
        makers.update(CONTENT)
        if fmt == "torchscript.pt":  # an archive keeps its parameter shapes (the state.pt case has one)
            makers.pop("wrong_shape")
        if kind == "latents":  # the width of a latent is checked against a generator, not on reading
            makers["wrong_shape"] = make_rank1
            makers["rank4"] = lambda src, dst, k, f: _mutate(src, dst, k, f, lambda t: t[None, None])
        if kind == "direction":  # its width is checked against a generator where it is applied; its rank on reading
            makers["wrong_shape"] = lambda src, dst, k, f: _mutate(src, dst, k, f, lambda t: t[None, None])
        if kind == "fs3":  # its CLIP width is checked against a CLIP model, not on reading
            makers.pop("wrong_shape")
            makers.update(FS3)
            if fmt == "npy":
                makers["strings"] = make_strings
        out += [(kind, fmt, name, maker) for name, maker in makers.items()]
    return out


CASES = cases()


def outcome(kind, fmt, name, maker, sources, case_dir) -> tuple[str, str]:
    """('clear' | 'unclear' | 'silent', what happened) for one bad file."""
    src = sources[(kind, fmt)]
    dst = os.path.join(case_dir, os.path.basename(SOURCES[(kind, fmt)][0]))
    maker(src, dst, kind, fmt)
    marker = dst + ".marker"
    base = os.path.basename(dst)
    try:
        _loader(kind)(dst)
    except FileNotFoundError as e:
        msg, ok_type = str(e), name == "missing"
    except CheckpointError as e:
        msg, ok_type = str(e), name != "missing"
    except Exception as e:  # noqa: BLE001 -- sorting every other exception as unclear is the point
        return "unclear", f"{type(e).__name__}: {str(e)[:300]}"
    else:
        return "silent", "loaded without an error"
    finally:
        if os.path.exists(marker):
            return "unclear", "THE PICKLE'S CODE RAN"  # noqa: B012
    if not ok_type or base not in msg or ADVICE in msg or "weights_only` set to `False" in msg:
        return "unclear", msg[:400]
    return "clear", msg


@pytest.mark.parametrize("kind,fmt,name,maker", CASES, ids=[f"{k}-{f}-{n}" for k, f, n, _ in CASES])
def test_bad_file_is_refused_clearly(kind, fmt, name, maker, sources, tmp_path):
    verdict, detail = outcome(kind, fmt, name, maker, sources, str(tmp_path))
    assert verdict == "clear", f"{verdict}: {detail}"
    assert not os.path.exists(os.path.join(str(tmp_path), os.path.basename(SOURCES[(kind, fmt)][0]) + ".marker"))


@pytest.mark.parametrize("kind,fmt", list(SOURCES), ids=[f"{k}-{f}" for k, f in SOURCES])
def test_good_files_load(kind, fmt, sources):
    """The unchanged files load: every refusal above comes from the corruption."""
    _loader(kind)(sources[(kind, fmt)])


def test_messages_name_what_was_expected_and_found(sources, tmp_path):
    """A text file where a generator belongs: the message names the file, the kind expected and what was found."""
    verdict, msg = outcome("generator", "pt", "text", make_text, sources, str(tmp_path))
    assert verdict == "clear", msg
    assert "expected a StyleGAN2 generator" in msg and "found" in msg


def test_nan_message_names_key_and_count(sources, tmp_path):
    verdict, msg = outcome("e4e", "pt", "nan", make_nan, sources, str(tmp_path))
    assert verdict == "clear", msg
    assert "encoder.styles.0.linear.weight" in msg and "1 non-finite" in msg


def test_wrong_shape_message_names_key_and_shapes(sources, tmp_path):
    for kind, fmt in (("face_parser", "pth"), ("mapper", "pt"), ("mapper", "safetensors")):
        d = os.path.join(str(tmp_path), f"{kind}-{fmt}")
        os.makedirs(d)
        verdict, msg = outcome(kind, fmt, "wrong_shape", make_wrong_shape, sources, d)
        assert verdict == "clear", msg
        key = SOURCES[(kind, fmt)][1][-1].replace("mapper.", "", 1)
        assert key in msg and "expected" in msg and "found" in msg, msg


def test_fs3_of_strings_names_the_file(sources, tmp_path):
    verdict, msg = outcome("fs3", "npy", "strings", make_strings, sources, str(tmp_path))
    assert verdict == "clear", msg
    assert "numeric" in msg or "number" in msg, msg



# ---- partial files of interrupted writes ---------------------------------------------------------


def test_stale_partial_is_removed_on_the_next_save(tmp_path, caplog):
    """A ``.partial`` left by a write that was killed (older than this process) goes on the next
    save to the same target, with a log line, even when that save itself is refused."""
    import logging

    from styleclip_core.formats import files

    target = str(tmp_path / "direction.safetensors")
    files.save_atomic({"x": torch.zeros(2)}, target)
    stale = target + files.PARTIAL
    with open(stale, "wb") as f:
        f.write(b"half a file")
    old = files.PROCESS_START - 3600
    os.utime(stale, (old, old))
    with caplog.at_level(logging.WARNING, logger="styleclip_core.formats"), pytest.raises(FileExistsError):
        files.save_atomic({"x": torch.ones(2)}, target)
    assert not os.path.exists(stale)
    assert any(stale in r.getMessage() and r.name == "styleclip_core.formats" for r in caplog.records)
    with open(stale, "wb") as f:  # the next one again, now a successful save
        f.write(b"half a file")
    os.utime(stale, (old, old))
    files.save_atomic({"x": torch.ones(2)}, target, overwrite=True)
    assert not os.path.exists(stale) and torch.equal(files.read_safetensors(target, "x")[0]["x"], torch.ones(2))


def test_recent_partial_is_not_counted_as_stale(tmp_path, caplog):
    """A ``.partial`` newer than this process may be another process's write in progress."""
    import logging

    from styleclip_core.formats import files

    target = str(tmp_path / "stats.safetensors")
    files.save_atomic({"x": torch.zeros(2)}, target)
    fresh = target + files.PARTIAL
    with open(fresh, "wb") as f:
        f.write(b"being written")
    with caplog.at_level(logging.WARNING, logger="styleclip_core.formats"), pytest.raises(FileExistsError):
        files.save_atomic({"x": torch.ones(2)}, target)
    assert os.path.exists(fresh) and not caplog.records


def test_failed_write_removes_its_partial(tmp_path):
    from styleclip_core.formats import files

    target = str(tmp_path / "bad.safetensors")
    with pytest.raises(Exception):
        files.save_atomic({"x": torch.zeros(2), "y": "not a tensor"}, target)
    assert not os.path.exists(target + files.PARTIAL) and not os.path.exists(target)

if __name__ == "__main__":  # counts: python tests/test_bad_files.py
    import sys
    import tempfile

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from styleclip_core.formats import tiny_models  # noqa: F811

    root = tempfile.mkdtemp()
    models = os.path.join(root, "models")
    tiny_models.write_models_folder(models)
    os.makedirs(os.path.join(root, "good"))
    good = make_sources(models, os.path.join(root, "good"))
    tally = {"clear": 0, "unclear": 0, "silent": 0}
    for i, (kind, fmt, name, maker) in enumerate(CASES):
        d = os.path.join(root, f"case{i}")
        os.makedirs(d)
        verdict, detail = outcome(kind, fmt, name, maker, good, d)
        tally[verdict] += 1
        if verdict != "clear":
            print(f"{verdict:8} {kind}-{fmt}-{name}: {detail[:200]}")
    print(f"files tried {sum(tally.values())}: " + ", ".join(f"{k} {v}" for k, v in tally.items()))
