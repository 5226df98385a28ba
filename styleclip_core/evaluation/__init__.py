"""Evaluation of edits (``python -m styleclip_core evaluate``): a config of edits run on sampled
faces or on photos (aligned and inverted with e4e), scored with ``edits.metrics`` and timed,
written as ``results.md`` / ``results.csv``; and the batch edit of a folder of photos with one
recipe (``python -m styleclip_core edit-folder``).

The top library layer: it needs the methods (``edits``) and the photos (``photos``), which sit
side by side and cannot import each other.

* ``config``: the edits file (YAML or JSON): a list of ``{method, prompt, neutral, settings}``;
* ``photo_input``: a folder's photos, read; points files; one photo aligned (both commands);
* ``runner``: faces, the edits of each method, timing, metrics, the result files;
* ``edit_folder``: the recipe, and the resumable, sharded job over a folder's photos.
"""
