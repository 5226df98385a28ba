"""Evaluation of edits (``python -m styleclip_core evaluate``): a config of edits run on sampled
faces or on photos (aligned and inverted with e4e), scored with ``edits.metrics`` and timed,
written as ``results.md`` / ``results.csv``.

The top library layer: it needs the methods (``edits``) and the photos (``photos``), which sit
side by side and cannot import each other.

* ``config``: the edits file (YAML or JSON): a list of ``{method, prompt, neutral, settings}``;
* ``runner``: faces, the edits of each method, timing, metrics, the result files.
"""
