"""Bad values (issue 13, "Values"): NaN / inf inputs, diverging losses, seeds at the widget's
maximum, grey photos and impossible face points, prompts longer than CLIP's context, counts of 0.

Each case runs a node as ComfyUI would (``comfy.run``; ``unvalidated=True`` for values ComfyUI's
widget limits refuse, as a script or an API prompt may send them) and is one of:

* clear: a ValueError / FloatingPointError whose message holds the expected words (the node's
  input name, the first bad index, what is wrong);
* crash: any other exception (a PIL / torch / Python error from deep inside);
* silent: no error for a bad input (NaN images out, empty latents), or a wrong result.

A case expecting success (``ok``) is silent when its check fails and a crash when it raises.
"""
import os

import pytest
import torch

import synthetic_face as sf
from styleclip_core.edits import losses

MAX_SEED = 0xFFFFFFFFFFFFFFFF
LONG_PROMPT = "a person with " + "very " * 100 + "purple hair"  # 104 words: far past 77 tokens


def outcome(run, expect) -> str:
    """'clear' / 'ok', or 'crash: ...' / 'silent: ...' (see the module doc)."""
    try:
        result = run()
    except (ValueError, FloatingPointError) as e:
        if callable(expect):
            return f"crash: {type(e).__name__}: {e}"
        missing = [w for w in expect if w.lower() not in str(e).lower()]
        return "clear" if not missing else f"crash: {type(e).__name__} without {missing}: {e}"
    except Exception as e:  # noqa: BLE001 - what the table counts
        import traceback

        frames = [f"{os.path.basename(f.filename)}:{f.lineno}" for f in traceback.extract_tb(e.__traceback__)[-4:]]
        return f"crash: {type(e).__name__}: {e} (at {' < '.join(reversed(frames))})"
    if callable(expect):
        why = expect(result)
        return "ok" if why is None else f"silent: {why}"
    return "silent: no error"


@pytest.fixture(scope="module")
def m(comfy):
    """The tiny models and a batch of 2 latents."""
    g = comfy.run("StyleCLIP_LoadGenerator", generator_name="stylegan2-ffhq-config-f.pt", ops_backend="reference", precision="fp32").args[0]
    clip = comfy.run("StyleCLIP_LoadCLIP", clip_name="ViT-B-32.pt", architecture="auto", image_preprocessing="styleclip").args[0]
    e4e = comfy.run("StyleCLIP_LoadE4E", e4e_name="e4e_ffhq_encode.pt", ops_backend="reference").args[0]
    mapper, mg, _ = comfy.run("StyleCLIP_LoadMapper", mapper_name="purple_hair.pt").args
    rel = comfy.run("StyleCLIP_ChannelRelevance", generator=g, fs3="fs3.npy", clip=clip, num_images=100, layers="all conv layers",
                    batch_size=16, precision="fp32", statistics_samples=2000, earlier_channels_at_mean=True).args[0]
    direction = comfy.run("StyleCLIP_GlobalDirection", relevance=rel, clip=clip, neutral="face", target="face with blonde hair",
                          beta=0.0, beta_report="").args[0]
    latents = comfy.run("StyleCLIP_SampleLatents", generator=g, seed=3, batch_size=2, truncation_psi=0.7).args[0]
    mlatents = comfy.run("StyleCLIP_SampleLatents", generator=mg, seed=3, batch_size=2, truncation_psi=0.7).args[0]
    photo = comfy.run("LoadImage", image=sf.PORTRAIT).args[0]
    return dict(g=g, clip=clip, e4e=e4e, mapper=mapper, mg=mg, rel=rel, direction=direction, latents=latents, mlatents=mlatents, photo=photo)


def poisoned(latents, value=float("nan"), index=1):
    """A copy of ``latents`` with one number of sample ``index`` set to ``value``."""
    from styleclip_core.models.latents import Latents

    if latents.w_plus is not None:
        w = latents.w_plus.clone()
        w[index, 0, 0] = value
        return Latents(w_plus=w)
    styles = [s.clone() for s in latents.styles]
    styles[2][index, 0] = value
    return Latents(styles=styles)


def bad_images(n=2, size=64, value=float("nan"), index=1):
    images = torch.rand(n, size, size, 3)
    images[index, 3, 4, 1] = value
    return images


def clip_loss(m, text="a person with purple hair"):
    return comfy_run(m, "StyleCLIP_CLIPLoss", clip=m["clip"], text=text, weight=1.0).args[0]


def comfy_run(m, node, **kw):
    return m["comfy"].run(node, **kw)


@pytest.fixture(scope="module")
def mm(m, comfy):
    return dict(m, comfy=comfy)


def optimize(m, **kw):
    args = dict(generator=m["g"], latents=m["latents"], loss=clip_loss(m), steps=2, learning_rate=0.1, space="W+",
                noise="const", noise_seed=0, preview_every=1)
    return comfy_run(m, "StyleCLIP_OptimizeLatents", **{**args, **kw})


def styles(m):
    return comfy_run(m, "StyleCLIP_ApplyGlobalDirection", generator=m["g"], latents=m["latents"], direction=m["direction"], alphas="1").args[0]


# ---- 1. non-finite inputs -----------------------------------------------------------------------

NON_FINITE = {
    "synthesize NaN W+": (lambda m: comfy_run(m, "StyleCLIP_Synthesize", generator=m["g"], latents=poisoned(m["latents"]), noise="const", noise_seed=0, chunk_size=4),
                          ["latents", "NaN", "batch index 1"]),
    "synthesize inf StyleSpace": (lambda m: comfy_run(m, "StyleCLIP_Synthesize", generator=m["g"], latents=poisoned(styles(m), float("inf")), noise="const", noise_seed=0, chunk_size=4),
                                  ["latents", "infinite", "batch index 1"]),
    "apply mapper NaN": (lambda m: comfy_run(m, "StyleCLIP_ApplyMapper", generator=m["mg"], mapper=m["mapper"], latents=poisoned(m["mlatents"]), strength=1.0),
                         ["latents", "NaN", "batch index 1"]),
    "apply global direction NaN": (lambda m: comfy_run(m, "StyleCLIP_ApplyGlobalDirection", generator=m["g"], latents=poisoned(m["latents"]), direction=m["direction"], alphas="1, 2"),
                                   ["latents", "NaN", "batch index 1"]),
    "CLIP score NaN image": (lambda m: comfy_run(m, "StyleCLIP_CLIPScore", clip=m["clip"], images=bad_images(), text="a face"),
                             ["images", "NaN", "batch index 1"]),
    "invert inf image": (lambda m: comfy_run(m, "StyleCLIP_InvertImages", e4e=m["e4e"], images=bad_images(value=float("inf")), chunk_size=4),
                         ["images", "infinite", "batch index 1"]),
    "optimize NaN latents": (lambda m: optimize(m, latents=poisoned(m["latents"])), ["latents", "NaN", "batch index 1"]),
    "optimize NaN mask": (lambda m: optimize(m, mask=torch.ones(2, 8, 8).index_put_((torch.tensor([1]), torch.tensor([2]), torch.tensor([2])), torch.tensor(float("nan")))),
                          ["mask", "NaN", "batch index 1"]),
    "local edit NaN mask": (lambda m: comfy_run(m, "StyleCLIP_LocalEdit", generator=m["g"], original=m["latents"], edited=m["latents"],
                                                mask=torch.tensor([[[1.0]], [[float("nan")]]]), feather=0.0, blend_from="8"),
                            ["mask", "NaN", "batch index 1"]),
    "local edit NaN edited": (lambda m: comfy_run(m, "StyleCLIP_LocalEdit", generator=m["g"], original=m["latents"], edited=poisoned(m["latents"]),
                                                  mask=torch.ones(64, 64), feather=0.0, blend_from="8"),
                              ["edited", "NaN", "batch index 1"]),
    "align faces NaN photo": (lambda m: comfy_run(m, "StyleCLIP_AlignFaces", images=bad_images(), landmarks="none: images are already aligned crops", output_size="256"),
                              ["images", "NaN", "batch index 1"]),
    "paste back NaN face": (lambda m: comfy_run(m, "StyleCLIP_PasteFaceBack", photos=m["photo"].expand(2, -1, -1, -1), faces=bad_images(),
                                                alignment=comfy_run(m, "StyleCLIP_AlignFaces", images=m["photo"].expand(2, -1, -1, -1), landmarks="points (from the points input)",
                                                                    output_size="256", points=sf.portrait_points_text()).args[1], feather=0.1),
                            ["faces", "NaN", "batch index 1"]),
}


@pytest.mark.parametrize("case", list(NON_FINITE))
def test_non_finite_inputs(mm, case):
    run, words = NON_FINITE[case]
    assert (result := outcome(lambda: run(mm), words)) == "clear", f"OUTCOME={result.split(':')[0]} {case}: {result}"


class TurnsNaN(losses.LossTerm):
    """A term that is finite for ``good`` steps, then NaN for sample 1."""

    kind = "turns NaN"

    def __init__(self, good=2):
        super().__init__(1.0)
        self.good, self.calls = good, 0

    def prepare(self, ctx):
        def term(c):
            self.calls += 1
            value = c.latents.w_plus.square().mean((1, 2)) * 0
            if self.calls > self.good:
                value = value + torch.tensor([0.0, float("nan")])
            return value

        return term


def test_diverging_loss_stops_with_the_step_and_term(mm):
    """The term's value turns NaN at step 3: the run stops there naming the step, the term and the
    face; nothing is returned and the input latents are unchanged."""
    before = mm["latents"].w_plus.clone()
    loss_set = losses.LossSet().add(losses.LatentL2Loss(0.008)).add(TurnsNaN(2))
    result = outcome(lambda: optimize(mm, loss=loss_set, steps=5), ["step 3", "turns NaN", "face 1"])
    assert result == "clear", f"OUTCOME={result.split(':')[0]} diverging loss: {result}"
    assert torch.equal(mm["latents"].w_plus, before)


# ---- 2. seeds at the widget maximum -------------------------------------------------------------


def _render(m, latents, seed):
    return comfy_run(m, "StyleCLIP_Synthesize", generator=m["g"], latents=latents, noise="random", noise_seed=seed, chunk_size=4).args[0]


def _wraps(m):
    """Image 1 at the maximum seed is drawn from seed 2**64, i.e. seed 0 wrapped around."""
    def check(images):
        one = m["latents"].slice(1, 2)
        close = lambda a, b: torch.allclose(a, b, atol=1e-5)  # noqa: E731 - batches of 1 and 2 round differently
        if not close(images[1], _render(m, one, 0)[0]) or close(images[1], _render(m, one, 1)[0]):
            return "image 1 at the maximum seed is not the seed-0 image"
        if not close(images[0], _render(m, m["latents"].slice(0, 1), MAX_SEED)[0]):
            return "image 0 differs from the image rendered alone"
        return None

    return check


def _ordinary_seeds_unchanged(m):
    """Ordinary seeds draw what torch.Generator().manual_seed(seed + i) drew before."""
    def check(images):
        g = m["g"]
        noise = [g.make_noise(1, "random", torch.Generator().manual_seed(7 + i)) for i in range(2)]
        expected = g.synthesis(m["latents"].to_styles(g), noise=[torch.cat(maps) for maps in zip(*noise)])
        from styleclip_core.models.render import to_unit_range

        return None if torch.equal(images, to_unit_range(expected)) else "the images of seed 7 changed"

    return check


SEEDS = {
    "synthesize max seed, batch 2": (lambda m: _render(m, m["latents"], MAX_SEED), _wraps),
    "synthesize seed 7 unchanged": (lambda m: _render(m, m["latents"], 7), _ordinary_seeds_unchanged),
    "optimize max seed, batch 2": (lambda m: optimize(m, noise="random", noise_seed=MAX_SEED, steps=1).args,
                                   lambda m: lambda out: None if out[1].shape == (2, 64, 64, 3) and torch.isfinite(out[1]).all() else "bad images"),
    "sample latents max seed": (lambda m: comfy_run(m, "StyleCLIP_SampleLatents", generator=m["g"], seed=MAX_SEED, batch_size=2, truncation_psi=0.7).args[0],
                                lambda m: lambda lat: None if lat.batch_size == 2 else "wrong batch"),
}


@pytest.mark.parametrize("case", list(SEEDS))
def test_seeds(mm, case):
    run, check = SEEDS[case]
    assert (result := outcome(lambda: run(mm), check(mm))) == "ok", f"OUTCOME={result.split(':')[0]} {case}: {result}"


# ---- 3. Align Faces: grey photos, impossible points ------------------------------------------------

POINTS = "points (from the points input)"


def _align(m, images, points, size="256"):
    return comfy_run(m, "StyleCLIP_AlignFaces", images=images, landmarks=POINTS, output_size=size, points=points).args


def _grey_matches_rgb(m):
    def check(out):
        grey = m["photo"].mean(-1, keepdim=True)
        rgb = _align(m, grey.expand(-1, -1, -1, 3), sf.portrait_points_text())[0]
        return None if out[0].shape == (1, 256, 256, 3) and torch.equal(out[0], rgb) else "grey alignment differs from its RGB copy"

    return check


ALIGN = {
    "grey photo": (lambda m: _align(m, m["photo"].mean(-1, keepdim=True), sf.portrait_points_text()), _grey_matches_rgb),
    "coinciding points": (lambda m: _align(m, m["photo"], "5 5 5 5 5 5 5 5"), ["image 0", "points", "coincide"]),
    "points far outside": (lambda m: _align(m, m["photo"], "100000 100000 100040 100000 100005 100050 100035 100050"), ["image 0", "points", "outside"]),
    "second image's points coincide": (lambda m: _align(m, m["photo"].expand(2, -1, -1, -1), sf.portrait_points_text() + "\n7 7 7 7 7 7 7 7"),
                                       ["image 1", "points", "coincide"]),
    "NaN typed point": (lambda m: _align(m, m["photo"], "nan 5 5 5 5 5 5 5"), ["points"]),
    "face far larger than the photo": (lambda m: _align(m, m["photo"], "0 0 1000000 0 0 1000000 1000000 1000000"), ["image 0", "points", "larger"]),
}


@pytest.mark.parametrize("case", list(ALIGN))
def test_align_faces(mm, case):
    run, expect = ALIGN[case]
    expect = expect(mm) if callable(expect) else expect
    want = "ok" if callable(expect) else "clear"
    assert (result := outcome(lambda: run(mm), expect)) == want, f"OUTCOME={result.split(':')[0]} {case}: {result}"


# ---- 4. prompts longer than CLIP's context --------------------------------------------------------


def test_tokens_beyond_context_counts_them(mm):
    clip = mm["clip"]
    assert clip.tokens_beyond_context("a person with purple hair") == 0
    assert clip.tokens_beyond_context("a " * 75) == 0  # 75 tokens + start + end = 77
    assert clip.tokens_beyond_context("a " * 76) == 1
    assert clip.tokens_beyond_context(LONG_PROMPT) == 105 - 75


def _says_dropped(text_of):
    def check(out):
        text = text_of(out)
        return None if "30 tokens" in text and "77" in text else f"the report does not say the prompt was cut: {text!r}"

    return check


PROMPTS = {
    "CLIP score": (lambda m: comfy_run(m, "StyleCLIP_CLIPScore", clip=m["clip"], images=torch.rand(1, 64, 64, 3), text=LONG_PROMPT),
                   _says_dropped(lambda out: out.args[1])),
    "CLIP loss": (lambda m: comfy_run(m, "StyleCLIP_CLIPLoss", clip=m["clip"], text=LONG_PROMPT, weight=1.0),
                  _says_dropped(lambda out: (out.ui or {}).get("text", ("",))[0])),
    "directional CLIP loss": (lambda m: comfy_run(m, "StyleCLIP_DirectionalCLIPLoss", clip=m["clip"], neutral_text="a face", target_text=LONG_PROMPT, weight=1.0),
                              _says_dropped(lambda out: (out.ui or {}).get("text", ("",))[0])),
    "optimize report": (lambda m: optimize(m, loss=clip_loss(m, LONG_PROMPT), steps=1),
                        _says_dropped(lambda out: out.ui["text"][0])),
    "global direction": (lambda m: comfy_run(m, "StyleCLIP_GlobalDirection", relevance=m["rel"], clip=m["clip"], neutral="face", target=LONG_PROMPT,
                                             beta=0.0, beta_report=""),
                         lambda out: None if "tokens" in out.args[1] and "77" in out.args[1] else f"the report does not say the prompt was cut: {out.args[1]!r}"),
}


@pytest.mark.parametrize("case", list(PROMPTS))
def test_long_prompts_are_reported(mm, case):
    run, check = PROMPTS[case]
    assert (result := outcome(lambda: run(mm), check)) == "ok", f"OUTCOME={result.split(':')[0]} {case}: {result}"


# ---- 5. counts outside the widget limits --------------------------------------------------------

COUNTS = {
    "sample latents batch 0": (lambda m: comfy_run(m, "StyleCLIP_SampleLatents", unvalidated=True, generator=m["g"], seed=0, batch_size=0, truncation_psi=0.7),
                               ["batch_size", "at least 1"]),
    "image grid 0 columns": (lambda m: comfy_run(m, "StyleCLIP_ImageGrid", unvalidated=True, images=torch.rand(3, 8, 8, 3), columns=0), ["columns", "at least 1"]),
    "image grid empty batch": (lambda m: comfy_run(m, "StyleCLIP_ImageGrid", unvalidated=True, images=torch.rand(0, 8, 8, 3), columns=2), ["images", "empty"]),
    "synthesize chunk 0": (lambda m: comfy_run(m, "StyleCLIP_Synthesize", unvalidated=True, generator=m["g"], latents=m["latents"], noise="const", noise_seed=0, chunk_size=0),
                           ["chunk_size", "at least 1"]),
    "invert chunk 0": (lambda m: comfy_run(m, "StyleCLIP_InvertImages", unvalidated=True, e4e=m["e4e"], images=torch.rand(2, 64, 64, 3), chunk_size=0),
                       ["chunk_size", "at least 1"]),
    "optimize preview_every 0": (lambda m: comfy_run(m, "StyleCLIP_OptimizeLatents", unvalidated=True, generator=m["g"], latents=m["latents"], loss=clip_loss(m),
                                                     steps=2, learning_rate=0.1, space="W+", noise="const", noise_seed=0, preview_every=0),
                                 ["preview_every", "at least 1"]),
    "optimize steps 0": (lambda m: comfy_run(m, "StyleCLIP_OptimizeLatents", unvalidated=True, generator=m["g"], latents=m["latents"], loss=clip_loss(m),
                                             steps=0, learning_rate=0.1, space="W+", noise="const", noise_seed=0, preview_every=1),
                         ["steps", "at least 1"]),
    "channel relevance statistics 0": (lambda m: comfy_run(m, "StyleCLIP_ChannelRelevance", unvalidated=True, generator=m["g"], fs3="compute for this generator and CLIP (cached)",
                                                           clip=m["clip"], num_images=1, layers="all conv layers", batch_size=16, precision="fp32",
                                                           statistics_samples=0, earlier_channels_at_mean=True),
                                       ["statistics_samples", "at least 1"]),
    "channel relevance 0 images": (lambda m: comfy_run(m, "StyleCLIP_ChannelRelevance", unvalidated=True, generator=m["g"], fs3="compute for this generator and CLIP (cached)",
                                                       clip=m["clip"], num_images=0, layers="all conv layers", batch_size=16, precision="fp32",
                                                       statistics_samples=2000, earlier_channels_at_mean=True),
                                   ["num_images", "at least 1"]),
}


@pytest.mark.parametrize("case", list(COUNTS))
def test_counts(mm, case):
    run, words = COUNTS[case]
    assert (result := outcome(lambda: run(mm), words)) == "clear", f"OUTCOME={result.split(':')[0]} {case}: {result}"


def test_library_checks_its_own_counts(mm):
    """The library refuses the counts itself, for scripts that never pass ComfyUI's widgets."""
    from styleclip_core.models.latents import sample_latents
    from styleclip_core.models.render import image_grid, render

    for run, words in [
        (lambda: sample_latents(mm["g"], 0, 0), ["batch_size"]),
        (lambda: sample_latents(mm["g"], -2, 0), ["batch_size"]),
        (lambda: image_grid(torch.rand(2, 4, 4, 3), 0), ["columns"]),
        (lambda: render(mm["g"], mm["latents"], chunk=0), ["chunk"]),
        (lambda: sample_latents(mm["g"], 1, 2 ** 64 + 5), lambda lat: None if torch.equal(lat.w_plus, sample_latents(mm["g"], 1, 5).w_plus) else "not wrapped"),
    ]:
        assert outcome(run, words) in ("clear", "ok")
