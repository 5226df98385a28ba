"""Video: a face edited consistently from frame to frame (STIT, Tzaban et al. 2022,
``rotemtzaban/STIT``). Frames come in and go out as ComfyUI IMAGE batches.

* ``alignment``: per-frame FFHQ crops whose centre and axes are smoothed over time;
* ``masks``: STIT's face-parsing masks (content, border ring, full) and its dilation;
* ``stitching``: the per-frame stitching tune that blends an edited crop into its frame;
* ``keyframes``: edit strengths per frame from (frame, strength) pairs;
* ``consistency``: flicker, identity across frames and the seam error at the crop border;
* ``example_clip``: a short clip of a real portrait that moves and turns (for the example workflow and tests).

A layer above ``photos`` (alignment, paste-back, pivotal tuning) and ``edits`` (directions),
which it composes; ``evaluation`` sits above it.
"""
