"""Video: edit a face through a clip, consistently from frame to frame (STIT). Frames come in and
go out as IMAGE batches, so core ComfyUI's video nodes (Load Video -> Get Video Components,
Create Video -> Save Video) and any other video loader or saver connect."""
from __future__ import annotations

from dataclasses import replace

import torch
from comfy_api.latest import io

from ..styleclip_core.models.e4e import invert
from ..styleclip_core.models.latents import Latents
from ..styleclip_core.photos import align
from ..styleclip_core.video import alignment as video_alignment
from ..styleclip_core.video.consistency import clip_consistency
from ..styleclip_core.video.frames import CLIP_TUNING, MaskSettings, edit_frames, smooth_latents, stitch_frames
from ..styleclip_core.video.keyframes import parse_keyframes, strengths
from ..styleclip_core.video.stitching import StitchingSettings
from .common import (CATEGORY, E4E, ArcFace, Direction, FaceParser, Generator, Latent, Lpips, NodeProgress, gradient_capable,
                     show_text, use)
from .inversion_nodes import tuning_outputs
from .photo_nodes import ALREADY_ALIGNED, BUILT_IN, POINTS, _landmark_options, landmark_detector

VideoAlignment = io.Custom("SCLIP_VIDEO_ALIGNMENT")  # styleclip_core.video.alignment.VideoAlignment
VIDEO = CATEGORY + "/video"
PASS_THROUGH, STOP = "pass through unedited", "stop with an error"


class ExampleClip(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_ExampleClip",
            display_name="Example Clip",
            category=VIDEO,
            description="A short clip to try the video nodes on: the Example Portrait (NASA's public-domain astronaut photo that comes "
            "with scikit-image) moving, rolling and turning a little. For your own video use Load Video -> Get Video Components.",
            inputs=[io.Int.Input("frames", default=16, min=2, max=300, tooltip="Number of frames.")],
            outputs=[io.Image.Output(display_name="frames", tooltip="The frames (frames x 352 x 384 RGB)."),
                     io.Float.Output(display_name="fps", tooltip="Its frame rate, for Create Video.")],
        )

    @classmethod
    def execute(cls, frames) -> io.NodeOutput:
        from ..styleclip_core.video.example_clip import example_clip

        return io.NodeOutput(torch.from_numpy(example_clip(frames)).float().div(255), 16.0)


class AlignVideoFaces(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        options = [o for o in _landmark_options() if o != ALREADY_ALIGNED]
        return io.Schema(
            node_id="StyleCLIP_AlignVideoFaces",
            display_name="Align Video Faces (smoothed)",
            category=VIDEO,
            description="Crops the face of every frame as FFHQ expects, with the crop's centre and axes smoothed over time (STIT) so the "
            "crops do not jitter. Frames without a face are reported by index and passed through unedited, or stop the run.",
            inputs=[
                io.Image.Input("frames", tooltip="The clip's frames (e.g. Get Video Components' images), one face each (the largest is used)."),
                io.Combo.Input("landmarks", options=options, default=BUILT_IN,
                               tooltip="built-in: the face mesh of the mediapipe package. A .task file: that MediaPipe face landmarker "
                               "(models/mediapipe). points: the points input."),
                io.Combo.Input("output_size", options=["256", "1024"], default="256",
                               tooltip="Crop size: 256 for e4e (the generator's size is used downstream either way); 1024 for full-size work."),
                io.Float.Input("center_sigma", default=1.0, min=0.0, max=50.0, step=0.1,
                               tooltip="Gaussian smoothing of the crop centre over time, in frames (STIT: 1; 0 = off)."),
                io.Float.Input("xy_sigma", default=3.0, min=0.0, max=50.0, step=0.1,
                               tooltip="Gaussian smoothing of the crop's size and rotation (its axes) over time, in frames (STIT: 3; 0 = off)."),
                io.Float.Input("scale", default=1.0, min=0.5, max=2.0, step=0.05, tooltip="Crop size relative to FFHQ's (STIT's --scale; 1 = FFHQ)."),
                io.Combo.Input("no_face", options=[PASS_THROUGH, STOP], default=PASS_THROUGH,
                               tooltip="What to do with frames where no face is found: keep them as they are, or stop and name them."),
                io.String.Input("points", default="", multiline=True, optional=True,
                                tooltip="With landmarks = points: per frame one line of 8 numbers, x y of the left eye centre, right eye "
                                "centre, left mouth corner, right mouth corner (one line applies to every frame)."),
            ],
            outputs=[
                io.Image.Output(display_name="crops", tooltip="The aligned face of every frame that has one."),
                VideoAlignment.Output(display_name="alignment", tooltip="Where each crop lies in its frame, and which frames have none (for Stitch and Paste Back)."),
                io.String.Output(display_name="info", tooltip="Frames aligned and frames without a face."),
            ],
        )

    @classmethod
    def execute(cls, frames, landmarks, output_size, center_sigma, xy_sigma, scale, no_face, points="") -> io.NodeOutput:
        n = frames.shape[0]
        if landmarks == POINTS:
            found = align.parse_points(points, n)
        else:
            with landmark_detector(landmarks) as detector:
                found = align.detect_each(detector, frames, NodeProgress(n))
        missing = [i for i, p in enumerate(found) if p is None]
        if missing and no_face == STOP:
            raise align.FaceNotFoundError(f"no face found in frames {missing} of {n} (frames count from 0); set no_face to '{PASS_THROUGH}' to keep them unedited")
        crops, where = video_alignment.align_video(frames, found, int(output_size), scale, center_sigma, xy_sigma, NodeProgress(n - len(missing)),
                                                   names={"frames": "frames", "points": "points", "scale": "scale"})
        info = where.summary()
        show_text(info)
        return io.NodeOutput(crops, where, info, ui={"text": (info,)})


class InvertFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_InvertFrames",
            display_name="Invert Frames (e4e)",
            category=VIDEO,
            description="Encodes every aligned frame into a W+ code with e4e, in chunks, optionally smoothing the codes over time.",
            inputs=[
                E4E.Input("e4e", tooltip="The encoder from Load e4e Encoder."),
                io.Image.Input("crops", tooltip="Align Video Faces' crops."),
                io.Float.Input("smoothing", default=0.0, min=0.0, max=20.0, step=0.1,
                               tooltip="Gaussian smoothing of the codes over time, in frames (0 = off, as STIT: its smoothed crops already steady the codes)."),
                io.Int.Input("chunk_size", default=4, min=1, max=64, tooltip="Frames encoded at once; lower it if memory runs out."),
            ],
            outputs=[Latent.Output(display_name="latents", tooltip="One W+ code per aligned frame.")],
        )

    @classmethod
    def execute(cls, e4e, crops, smoothing, chunk_size) -> io.NodeOutput:
        use(e4e)
        codes = invert(e4e, crops, chunk_size, NodeProgress(crops.shape[0]), names={"chunk": "chunk_size"})
        return io.NodeOutput(smooth_latents(Latents(w_plus=codes), smoothing))


class TuneOnClip(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        d = CLIP_TUNING
        return io.Schema(
            node_id="StyleCLIP_TuneOnClip",
            display_name="Tune on Clip (PTI)",
            category=VIDEO,
            description="Pivotal tuning of one generator on all the clip's frames (STIT): each step updates the generator once per frame, "
            "so identity and detail hold across the clip. STIT's defaults: 300 steps, lr 3e-5, L2 weight 10, LPIPS-alex weight 1.",
            inputs=[
                Generator.Input("generator", tooltip="The generator to tune (not changed; a tuned copy comes out)."),
                Lpips.Input("lpips", tooltip="LPIPS-alex (Load LPIPS with net = alex)."),
                Latent.Input("latents", tooltip="Invert Frames' codes, one per aligned frame (the pivots)."),
                io.Image.Input("crops", tooltip="Align Video Faces' crops (resized to the generator's resolution)."),
                io.Int.Input("steps", default=d.steps, min=1, max=10000, tooltip="Tuning steps over the clip (STIT: 300); each updates once per frame."),
                io.Float.Input("learning_rate", default=d.learning_rate, min=0.0, max=0.1, step=1e-6, tooltip="Adam learning rate (STIT: 3e-5)."),
                io.Float.Input("l2_weight", default=d.l2_weight, min=0.0, max=100.0, step=0.1, tooltip="Weight of the pixel L2 term (STIT: 10)."),
                io.Float.Input("lpips_weight", default=d.lpips_weight, min=0.0, max=100.0, step=0.1, tooltip="Weight of the LPIPS term (STIT: 1)."),
            ],
            outputs=[
                Generator.Output(display_name="generator", tooltip="The generator tuned on the clip."),
                Latent.Output(display_name="latents", tooltip="The pivots (unchanged), to edit with the tuned generator."),
                io.Image.Output(display_name="reconstruction", tooltip="The pivots rendered by the tuned generator."),
                io.String.Output(display_name="info", tooltip="Steps run and the last LPIPS / L2 per frame."),
            ],
        )

    @classmethod
    def execute(cls, generator, lpips, latents, crops, steps, learning_rate, l2_weight, lpips_weight) -> io.NodeOutput:
        settings = replace(CLIP_TUNING, steps=steps, learning_rate=learning_rate, l2_weight=l2_weight, lpips_weight=lpips_weight)
        return tuning_outputs(generator, lpips, latents, crops, settings, names={"latents": "latents", "images": "crops"})


class EditFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_EditFrames",
            display_name="Edit Frames",
            category=VIDEO,
            description="Adds one direction to every frame's code: the same edit on every frame (no per-frame optimisation), its strength "
            "constant or keyframed. Any direction of the pack works: global (text), SeFa / GANSpace, a mapper's (Mapper as Direction), a file.",
            inputs=[
                Generator.Input("generator", tooltip="The (clip-tuned) generator the codes belong to."),
                Latent.Input("latents", tooltip="One code per aligned frame (Tune on Clip's or Invert Frames')."),
                Direction.Input("direction", tooltip="The edit (W, W+ rows or StyleSpace)."),
                VideoAlignment.Input("alignment", tooltip="Align Video Faces' alignment: which frame each code belongs to, for the keyframes."),
                io.Float.Input("strength", default=3.0, min=-100.0, max=100.0, step=0.1, tooltip="Strength on every frame (when no keyframes are given)."),
                io.String.Input("keyframes", default="", multiline=True, optional=True,
                                tooltip="Optional 'frame: strength' pairs, e.g. '0: 0, 8: 3, 15: 3' (frames of the clip, from 0): "
                                "interpolated between keyframes, held before the first and after the last."),
            ],
            outputs=[
                Latent.Output(display_name="latents", tooltip="The edited codes, one per aligned frame."),
                io.String.Output(display_name="info", tooltip="The strength of every frame."),
            ],
        )

    @classmethod
    def execute(cls, generator, latents, direction, alignment, strength, keyframes="") -> io.NodeOutput:
        alignment.check_faces(latents.batch_size, "latents")
        per_frame = strengths(alignment.frame_count, parse_keyframes(keyframes), strength)[list(alignment.frames)]
        edited = edit_frames(generator, latents, direction, per_frame)
        info = f"{direction.describe()}; strength per aligned frame: " + ", ".join(f"{f}: {a:g}" for f, a in zip(alignment.frames, per_frame))
        return io.NodeOutput(edited, info, ui={"text": (info,)})


class StitchAndPasteBack(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        d, m = StitchingSettings(), MaskSettings()
        return io.Schema(
            node_id="StyleCLIP_StitchAndPasteBack",
            display_name="Stitch and Paste Back",
            category=VIDEO,
            description="Per frame: renders the edited code, tunes a copy of the generator for a few steps so the edited crop matches the frame "
            "around the face (STIT's stitching tuning, face-parsing masks), and pastes it into the frame with a feathered mask. "
            "Frames without a face pass through. The info line gives the seam error before and after stitching.",
            inputs=[
                Generator.Input("generator", tooltip="The clip-tuned generator (Tune on Clip)."),
                FaceParser.Input("face_parser", tooltip="BiSeNet (Load Face Parser): finds the face whose surroundings are stitched."),
                io.Image.Input("frames", tooltip="The clip's frames, as given to Align Video Faces."),
                VideoAlignment.Input("alignment", tooltip="Align Video Faces' alignment."),
                io.Image.Input("crops", tooltip="Align Video Faces' crops (the real faces the border is matched to)."),
                Latent.Input("latents", tooltip="Edit Frames' codes, one per aligned frame."),
                io.Int.Input("steps", default=d.steps, min=0, max=1000, tooltip="Stitching steps per frame (STIT: 100; 0 = paste the edit as it is)."),
                io.Float.Input("learning_rate", default=d.learning_rate, min=0.0, max=0.1, step=1e-5, tooltip="Adam learning rate (STIT: 3e-4)."),
                io.Float.Input("content_weight", default=d.content_weight, min=0.0, max=10.0, step=0.001,
                               tooltip="Weight of keeping the edit inside the face (STIT: 0.01; the border term has weight 1)."),
                io.Combo.Input("loss", options=["l2", "l1"], default=d.loss, tooltip="Pixel distance of both terms (STIT: l2)."),
                io.Int.Input("outer_dilation", default=m.outer_dilation, min=0, max=200,
                             tooltip="Width of the ring around the face that is matched to the frame and pasted, in pixels of a 1024 crop (STIT: 50)."),
                io.Int.Input("inner_dilation", default=m.inner_dilation, min=0, max=100, tooltip="Grow the face mask first, in pixels of a 1024 crop (STIT: 0)."),
                io.Boolean.Input("whole_image_border", default=False, tooltip="Match everything outside the face instead of a ring (STIT's --whole_image_border)."),
                io.Boolean.Input("feather", default=True, tooltip="Soften the paste mask over half the ring (STIT's feathered output)."),
            ],
            outputs=[
                io.Image.Output(display_name="frames", tooltip="The edited clip, every frame (for Create Video)."),
                io.Mask.Output(display_name="masks", tooltip="Where the face was pasted in each frame."),
                io.Image.Output(display_name="stitched_crops", tooltip="The stitched faces, one per aligned frame."),
                io.String.Output(display_name="info", tooltip="Seam error before / after stitching and time per frame."),
            ],
        )

    @classmethod
    def execute(cls, generator, face_parser, frames, alignment, crops, latents, steps, learning_rate, content_weight, loss, outer_dilation,
                inner_dilation, whole_image_border, feather) -> io.NodeOutput:
        use(generator, face_parser)
        settings = StitchingSettings(steps=steps, learning_rate=learning_rate, content_weight=content_weight, loss=loss)
        masks = MaskSettings(outer_dilation, inner_dilation, whole_image_border, feather)
        with gradient_capable():
            result = stitch_frames(generator, frames, alignment, crops, latents, face_parser, settings, masks, NodeProgress(len(alignment.frames)),
                                   names={"frames": "frames", "crops": "crops", "latents": "latents"})
        info = result.summary()
        show_text(info)
        return io.NodeOutput(result.frames, result.masks, result.crops, info, ui={"text": (info,)})


class VideoConsistency(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StyleCLIP_VideoConsistency",
            display_name="Video Consistency",
            category=VIDEO,
            description="How steady an edited clip is: the frame-to-frame change inside the face, output against input (flicker: 1 = none "
            "added), and with ArcFace, identity across frames and to the input faces. A table, shown on the node.",
            inputs=[
                io.Image.Input("frames_in", tooltip="The original frames."),
                io.Image.Input("frames_out", tooltip="The edited frames (Stitch and Paste Back)."),
                io.Mask.Input("masks", optional=True, tooltip="The face region per frame (Stitch and Paste Back's masks); else the whole frame."),
                ArcFace.Input("arcface", optional=True, tooltip="ArcFace (Load ArcFace) for the identity rows."),
                io.Image.Input("crops_out", optional=True, tooltip="The edited faces (Stitch and Paste Back's stitched crops), for identity."),
                io.Image.Input("crops_in", optional=True, tooltip="The original faces (Align Video Faces' crops), for identity to the input."),
            ],
            outputs=[io.String.Output(display_name="table", tooltip="The measures as a Markdown table.")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, frames_in, frames_out, masks=None, arcface=None, crops_out=None, crops_in=None) -> io.NodeOutput:
        use(arcface)
        table = clip_consistency(frames_in, frames_out, masks, arcface, crops_out, crops_in).table()
        return io.NodeOutput(table, ui={"text": (table,)})


NODES: list[type[io.ComfyNode]] = [ExampleClip, AlignVideoFaces, InvertFrames, TuneOnClip, EditFrames, StitchAndPasteBack, VideoConsistency]
