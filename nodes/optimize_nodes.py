"""Latent optimisation node: StyleCLIP's text edit by gradient descent on the codes."""
from __future__ import annotations

from comfy_api.latest import io

from ..styleclip_core.edits.optimize import optimize_latents
from ..styleclip_core.models.render import to_unit_range
from .common import CATEGORY, Generator, Latent, Loss, NodeProgress, gradient_capable, use

SPACE_OPTIONS = {"W+": "w+", "StyleSpace": "s"}


class OptimizeLatents(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_OptimizeLatents",
            display_name="Optimize Latents (text edit)",
            category=CATEGORY,
            description="StyleCLIP latent optimisation: Adam on the codes of each face to minimise the connected losses, "
            "with the reference's learning-rate schedule (warm-up over the first 5 % of the steps, cosine decay over the last 25 %). "
            "Faces of a batch are edited together but independently. Interrupting stops at once and outputs nothing.",
            inputs=[
                Generator.Input("generator", tooltip="The generator."),
                Latent.Input("latents", tooltip="Starting codes (sampled or inverted), one edit per face."),
                Loss.Input("loss", tooltip="The terms to minimise (CLIP Loss, chained with Latent L2 / Identity / Directional losses)."),
                io.Int.Input("steps", default=300, min=1, max=10000, tooltip="Optimisation steps (reference: 300; StyleCLIP's notebook uses 40)."),
                io.Float.Input("learning_rate", default=0.1, min=0.0, max=10.0, step=0.001, tooltip="Peak Adam learning rate (reference: 0.1)."),
                io.Combo.Input(
                    "space", options=list(SPACE_OPTIONS), default="W+",
                    tooltip="W+: optimise the W+ rows. StyleSpace: optimise the style vectors of every convolution (not the toRGB layers); "
                    "often more disentangled. The output latents are in this space.",
                ),
                io.Combo.Input("noise", options=["const", "random"], default="const", tooltip="'const': the generator's stored noise maps (as StyleCLIP). 'random': noise drawn per face from the seed, as Synthesize Images draws it."),
                io.Int.Input("noise_seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, tooltip="Seed of the noise when noise is 'random' (face i uses seed + i); render the output with the same seed to reproduce the image."),
                io.Int.Input("preview_every", default=10, min=1, max=1000, tooltip="Show the current image on the node every this many steps."),
                io.Mask.Input(
                    "mask", optional=True,
                    tooltip="Region the edit may change (1 = edit), one per face or one for all, any resolution. CLIP losses then score only this "
                    "region (over the original image elsewhere); add Region Preservation Loss to keep the outside unchanged.",
                ),
            ],
            outputs=[
                Latent.Output(display_name="latents", tooltip="Edited codes (W+ or StyleSpace, as chosen)."),
                io.Image.Output(display_name="images", tooltip="The edited images, rendered from the edited codes."),
            ],
        )

    @classmethod
    def execute(cls, generator, latents, loss, steps, learning_rate, space, noise, noise_seed, preview_every, mask=None) -> io.NodeOutput:
        use(generator, *loss.networks)
        with gradient_capable():
            result = optimize_latents(
                generator, latents, loss, steps, learning_rate, SPACE_OPTIONS[space], mask=mask, noise=noise, seed=noise_seed,
                progress=NodeProgress(steps), preview_every=preview_every, names={"start": "latents"},
            )
        final = ", ".join(f"{label} {values.mean():.4f}" for label, values in result.history[-1].items())
        report = f"{loss.describe()}; last step (mean over {latents.batch_size} faces): {final}"
        report += "".join(f"; {note}" for note in loss.notes())
        if mask is not None:
            report += "; mask covers " + ", ".join(f"{float(m.mean()):.0%}" for m in mask.reshape(-1, *mask.shape[-2:]).float()) + " of the image"
        return io.NodeOutput(result.latents, to_unit_range(result.images), ui={"text": (report,)})


NODES = [OptimizeLatents]
