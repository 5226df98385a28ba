"""Directions found without text: SeFa (from the generator's weights) and GANSpace (from sampled W),
each a ranked list of components, on all W+ rows or a range of them."""
from __future__ import annotations

from comfy_api.latest import io

from ..styleclip_core.edits import factorization
from .common import CATEGORY, Direction, Generator, use

GLOBAL = CATEGORY + "/global"
ROW_TIPS = (
    "First W+ row the direction changes (0 = the coarsest layers: pose, face shape; middle rows: features, hair; "
    "the last rows: colour and fine detail).",
    "Row after the last one it changes (exclusive, as GANSpace's layer ranges); 0 = to the last row. Rows 0 to the last give a W direction.",
)


def _rows(direction) -> str:
    start, end = direction.info.get("rows", (0, 0))
    return f"W+ rows {start} to {end - 1}" if direction.space == "w+" else "all W+ rows (a W direction)"


class SeFaDirection(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_SeFaDirection",
            display_name="SeFa Direction",
            category=GLOBAL,
            description="SeFa (closed-form factorisation, Shen & Zhou): the directions in W that the generator's style layers "
            "stretch most, from the singular vectors of their stacked modulation weights (no sampling, no training, about a "
            "second). Component 0 changes the image most. The direction has unit length: alpha is rosinality's apply_factor "
            "'degree' (default 5), which it applies before truncation: at truncation 0.7, degree d is alpha 0.7 d here.",
            inputs=[
                Generator.Input("generator", tooltip="The generator to factorise (its weights alone decide the directions)."),
                io.Int.Input("component", default=0, min=0, max=4095, tooltip="Which direction: 0 = the largest singular value. The info output lists the first ones."),
                io.Int.Input("start_row", default=0, min=0, max=64, tooltip=ROW_TIPS[0]),
                io.Int.Input("end_row", default=0, min=0, max=64, tooltip=ROW_TIPS[1]),
            ],
            outputs=[
                Direction.Output(display_name="direction", tooltip="A W (or W+ rows) direction of unit length, for Apply Direction, Combine, Save."),
                io.String.Output(display_name="info", tooltip="The component's singular value and share, and the largest singular values."),
            ],
        )

    @classmethod
    def execute(cls, generator, component, start_row, end_row) -> io.NodeOutput:
        use(generator)
        direction = factorization.sefa_direction(generator, component, start_row, end_row)
        f = factorization.sefa(generator)
        top = ", ".join(f"{s:.4g}" for s in f.values[:8].tolist())
        info = (f"SeFa component {component} of {f.count}: singular value {f.values[component]:.4g} "
                f"({100 * f.share[component]:.2f} % of the sum of squares), {_rows(direction)}; largest singular values: {top}")
        return io.NodeOutput(direction, info, ui={"text": (info,)})


class GANSpaceDirection(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_GANSpaceDirection",
            display_name="GANSpace Direction",
            category=GLOBAL,
            description="GANSpace (Härkönen et al.): principal components of sampled W codes, ordered by explained variance, "
            "applied to a range of W+ rows as in the paper's named edits. The direction is the component times its standard "
            "deviation, so alpha counts standard deviations (GANSpace's sigma; its pictures use 2). The decomposition is kept "
            "in memory, so changing component or rows is instant.",
            inputs=[
                Generator.Input("generator", tooltip="The generator whose W space is sampled."),
                io.Int.Input("component", default=0, min=0, max=4095, tooltip="Which principal component: 0 = the most variance. The info output gives its share."),
                io.Int.Input("start_row", default=0, min=0, max=64, tooltip=ROW_TIPS[0]),
                io.Int.Input("end_row", default=0, min=0, max=64, tooltip=ROW_TIPS[1]),
                io.Int.Input("samples", default=10000, min=100, max=1000000, step=1000,
                             tooltip="W codes sampled for the PCA. The paper uses 300000 (about 10 s on a 2-core CPU for a 512-wide mapping, and "
                             "0.8 GB); 10000 gives the leading components well in under a second. Changing it recomputes the components."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, tooltip="Seed of the sampled Z codes (the same seed and samples give the same components)."),
            ],
            outputs=[
                Direction.Output(display_name="direction", tooltip="A W (or W+ rows) direction of one standard deviation, for Apply Direction, Combine, Save."),
                io.String.Output(display_name="info", tooltip="The component's standard deviation and explained-variance fraction, and those of the first components."),
            ],
        )

    @classmethod
    def execute(cls, generator, component, start_row, end_row, samples, seed) -> io.NodeOutput:
        use(generator)
        direction = factorization.ganspace_direction(generator, component, start_row, end_row, samples, seed)
        f = factorization.ganspace(generator, samples, seed)
        top = ", ".join(f"{100 * s:.1f}" for s in f.share[:8].tolist())
        info = (f"GANSpace component {component} of {f.count} ({samples} samples, seed {seed}): std {f.values[component]:.4g}, "
                f"explains {100 * f.share[component]:.2f} % of the variance, {_rows(direction)}; first components explain (%): {top}")
        return io.NodeOutput(direction, info, ui={"text": (info,)})


NODES = [SeFaDirection, GANSpaceDirection]
