"""The one progress callback type of the library's long jobs."""
from __future__ import annotations

from typing import Callable

import torch

# progress(done, total, preview) is called after each unit of work (a batch, a step, a layer);
# preview is an image batch in the generator's [-1, 1] layout, or None. It may raise to stop the
# job: ComfyUI's interruption arrives this way, and jobs that resume save what they finished.
Progress = Callable[[int, int, "torch.Tensor | None"], None]
