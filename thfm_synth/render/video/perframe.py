"""Annotations and QA of a video, fed one stored frame at a time.

Both render paths (serial and streamed, render/video/stream.py) feed the same `VideoLabels`, so
annotations.npz and the QA figures are the same bytes whichever path made them. What it keeps per
frame is a few joint arrays and a dict of QA figures, never the frame's images: memory is flat in
the number of frames.
"""

from __future__ import annotations

import numpy as np

from thfm_synth.render import labelcodec, outputs, qa
from thfm_synth.render.scene.visibility import VISIBLE
from thfm_synth.render.video.annotations import FrameAnnotator, people_annotations


def as_stored(fr: outputs.Frame, stored) -> outputs.Frame:
    """The label arrays of a decoded frame as `outputs.read_frame` returns them after `write_frame`
    (each quantised as its file stores it), without writing and reading the files back."""
    out = outputs.Frame()
    if "depth" in stored and fr.depth is not None:
        out.depth = labelcodec.depth_decode(labelcodec.depth_encode(fr.depth))
    if "normal" in stored and fr.normal is not None:
        out.normal = labelcodec.oct_decode(labelcodec.oct_encode(fr.normal))
    if "mask" in stored and fr.mask is not None:
        out.mask = outputs._u16(fr.mask).astype(np.float32) / outputs.U16
    if "iuv" in stored and fr.part is not None:
        out.part = fr.part.astype(np.uint8)
    if "canonical" in stored and fr.canonical is not None:
        out.canonical = labelcodec.unit_decode(labelcodec.unit_encode(fr.canonical))
    if "people" in stored and fr.people is not None:
        out.people = fr.people.astype(np.float16).astype(np.float32)
    return out


class VideoLabels:
    """Per-person annotators and per-frame QA figures of one video (`asm`: the assembled scene)."""

    def __init__(self, spec, asm, desc):
        self.spec, self.asm, self.desc = spec, asm, desc
        cam = desc.camera
        people = [(asm.anim, asm.joints_world)] + [(o.anim, o.joints_world) for o in asm.others]
        self.people = [
            FrameAnnotator(cam.k, cam.r, cam.t, joints, {c: anim.joints[c].names for c in joints})
            for anim, joints in people
        ]
        self.frame_qa: dict[int, dict] = {}

    def add_frame(self, f: int, fr: outputs.Frame) -> None:
        """Frame f's labels as stored (`as_stored` or `read_frame`): visibility, bbox, QA figures."""
        several = bool(self.asm.others)
        for i, person in enumerate(self.people):
            # with several people the others' coverage decides who hides whom
            own = fr.mask if fr.people is None else fr.people[..., i]
            others = np.clip(fr.mask - own, 0.0, 1.0) if several else None
            vis = person.add(f, fr.depth, own, others)
            if i == 0:
                subject_vis = vis["smpl24"]
        a = self.people[0].out
        self.frame_qa[f] = qa.check_frame(
            fr.depth,
            fr.normal,
            fr.mask,
            a["K"][f],
            a["R"][f],
            a["t"][f],
            a["joints3d_world_smpl24"][f],
            a["joints2d_smpl24"][f],
            subject_vis == VISIBLE,
            fr.part,
            fr.canonical,
        )

    def add_rgb(self, f: int, rgb: np.ndarray, mask: np.ndarray) -> None:
        """The RGB figures of frame f (after add_frame), as check_frame(rgb=...) makes them."""
        self.frame_qa[f]["background_failed"] = qa.background_failed(rgb, mask, self.spec.background_kind == "hdri")
        self.frame_qa[f]["subject_clipped"] = qa.subject_clipped(rgb, mask)

    def annotations(self) -> dict:
        per_person = [p.result() for p in self.people]
        ann = per_person[0]
        if self.asm.others:  # every person, the subject first (annotations.py `people_*`)
            persons = sorted((o for o in self.desc.objects if o.person), key=lambda o: o.person)
            ann.update(
                people_annotations(
                    per_person,
                    [o.instance for o in persons],
                    [self.spec.character_id] + [p.spec.character_id for p in self.asm.others],
                    [self.spec.motion_id] + [p.spec.motion_id for p in self.asm.others],
                )
            )
        ann.update(self.asm.body_annotations or {})  # SMPL-X parameters (SMPL-X characters)
        return ann

    def report(self, qa_cfg) -> dict:
        n = self.desc.num_frames
        return qa.QaReport(
            [self.frame_qa[f] for f in range(n)],
            motion=qa.motion_figures(self.people[0].out["joints3d_world_smpl24"], self.spec.fps),
            mesh_facet_deg=qa.shading_facet_deg(self.asm.anim.character.vertices, self.asm.anim.character.faces),
        ).summarize(qa_cfg)
