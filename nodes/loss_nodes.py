"""Loss nodes: each adds one weighted term to an SCLIP_LOSS set; chain them to combine terms."""
from __future__ import annotations

from comfy_api.latest import io

from ..styleclip_core.edits import losses
from .common import CATEGORY, ArcFace, Clip, Loss

LOSS_CATEGORY = CATEGORY + "/losses"


def _loss_in():
    return Loss.Input("loss", optional=True, tooltip="Terms to add this one to (from another loss node); leave empty to start a new set.")


def _loss_out():
    return Loss.Output(display_name="loss", tooltip="The incoming terms plus this one: connect to Optimize Latents or to another loss node.")


def _output(loss: losses.LossSet, term: losses.LossTerm) -> io.NodeOutput:
    """The chained set; the term's notes (a text CLIP cuts) shown on the node."""
    notes = term.notes()
    return io.NodeOutput(losses.chain(loss, term), ui={"text": ("; ".join(notes),)} if notes else None)


def _weight(default, tooltip):
    return io.Float.Input("weight", default=default, min=0.0, max=1000.0, step=0.001, tooltip=tooltip)


class CLIPLoss(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_CLIPLoss",
            display_name="CLIP Loss",
            category=LOSS_CATEGORY,
            description="StyleCLIP's CLIP loss: 1 - CLIP similarity between the edited image and the text (the logits / 100 of the reference). "
            "With a mask on Optimize Latents, CLIP scores the edited image inside the mask over the original outside it.",
            inputs=[
                Clip.Input("clip", tooltip="The CLIP model (Load CLIP)."),
                io.String.Input("text", default="a person with purple hair", multiline=True, tooltip="What the edited face should look like."),
                _weight(1.0, "Weight of this term (the reference's CLIP loss has weight 1)."),
                _loss_in(),
            ],
            outputs=[_loss_out()],
        )

    @classmethod
    def execute(cls, clip, text, weight, loss=None) -> io.NodeOutput:
        return _output(loss, losses.ClipLoss(clip, text, weight))


class DirectionalCLIPLoss(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_DirectionalCLIPLoss",
            display_name="Directional CLIP Loss",
            category=LOSS_CATEGORY,
            description="1 - cos(change of the image's CLIP embedding, change from the neutral to the target text's embedding): "
            "asks the edit to move the face the way the text moves (StyleGAN-NADA's directional loss), not toward a fixed point. "
            "With a mask on Optimize Latents, only the change inside the mask counts.",
            inputs=[
                Clip.Input("clip", tooltip="The CLIP model (Load CLIP)."),
                io.String.Input("neutral_text", default="a face", tooltip="Describes the face as it is."),
                io.String.Input("target_text", default="a face with purple hair", tooltip="Describes the face as it should become."),
                _weight(1.0, "Weight of this term."),
                _loss_in(),
            ],
            outputs=[_loss_out()],
        )

    @classmethod
    def execute(cls, clip, neutral_text, target_text, weight, loss=None) -> io.NodeOutput:
        return _output(loss, losses.DirectionalClipLoss(clip, neutral_text, target_text, weight))


class IdentityLoss(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_IdentityLoss",
            display_name="Identity Loss",
            category=LOSS_CATEGORY,
            description="StyleCLIP's ID loss: 1 - ArcFace similarity between the edited and the original face; keeps the person recognisable.",
            inputs=[
                ArcFace.Input("arcface", tooltip="The identity network (Load ArcFace)."),
                _weight(0.005, "Weight of this term (0.005 in StyleCLIP's optimisation notebook; the script's default 0 means no identity term)."),
                _loss_in(),
            ],
            outputs=[_loss_out()],
        )

    @classmethod
    def execute(cls, arcface, weight, loss=None) -> io.NodeOutput:
        return io.NodeOutput(losses.chain(loss, losses.IdentityLoss(arcface, weight)))


class LatentL2Loss(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_LatentL2Loss",
            display_name="Latent L2 Loss",
            category=LOSS_CATEGORY,
            description="StyleCLIP's latent distance between the edited and the original codes (all W+ rows, or all StyleSpace layers); "
            "keeps the edit close to the starting face. Reference settings: latent optimisation sum x 0.008, mapper training mean x 0.8.",
            inputs=[
                _weight(0.008, "Weight of this term (latent optimisation's l2_lambda is 0.008 with 'sum'; mapper training's latent_l2_lambda is 0.8 with 'mean')."),
                _loss_in(),
                io.Combo.Input(
                    "reduction", options=list(losses.L2_REDUCTIONS), default="sum", optional=True,
                    tooltip="'sum': sum of squared differences (StyleCLIP's latent optimisation). 'mean': mean squared difference, "
                    "summed over StyleSpace layers (StyleCLIP's mapper training, nn.MSELoss).",
                ),
            ],
            outputs=[_loss_out()],
        )

    @classmethod
    def execute(cls, weight, loss=None, reduction="sum") -> io.NodeOutput:
        return io.NodeOutput(losses.chain(loss, losses.LatentL2Loss(weight, reduction)))


class RegionPreservationLoss(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_RegionPreservationLoss",
            display_name="Region Preservation Loss",
            category=LOSS_CATEGORY,
            description="Keeps the image unchanged outside the mask connected to Optimize Latents: the mean squared (or absolute) "
            "pixel difference between the edited and the original image there. Needs that mask.",
            inputs=[
                _weight(10.0, "Weight of this term. 10 (for l2, an estimate, not tuned on the real models) should keep a typical edit's spill-over "
                        "outside the mask to a few grey levels; raise it if the outside still changes, lower it if the edit does not happen. "
                        "l1 values are larger for small changes: start near 1."),
                io.Combo.Input(
                    "distance", options=list(losses.RegionPreservationLoss.DISTANCES), default="l2",
                    tooltip="l2: mean squared difference (tolerates faint changes, punishes large ones). "
                    "l1: mean absolute difference (pushes faint changes to zero, more tolerant of a few large ones, e.g. hair crossing the mask edge).",
                ),
                _loss_in(),
            ],
            outputs=[_loss_out()],
        )

    @classmethod
    def execute(cls, weight, distance, loss=None) -> io.NodeOutput:
        return io.NodeOutput(losses.chain(loss, losses.RegionPreservationLoss(weight, distance)))


NODES = [CLIPLoss, DirectionalCLIPLoss, IdentityLoss, LatentL2Loss, RegionPreservationLoss]
