"""'0 = in front' means in front: planned videos of every motion, assembled without Blender.

For every CMU clip in ../shared and every built-in motion, planned with `azimuth_deg: [-40, 40]`
(windows, mirroring, speeds, trajectories and backgrounds as the planner draws them; set
scenes and HDRIs included, so retargeting, mirroring and placement all turn the subject):

- face framing: the ground-truth face angle at the first frame (nose direction against the
  line of sight, from the rendered COCO face points and the stored camera) is in the range,
  and nose and both eyes are inside the image in >= 95% of frames;
- body framings: the camera's azimuth from the body's facing at the first frame is in the
  range, and the face angle is in the range widened by the subject's own head-vs-body yaw at
  that frame plus 5 deg of parallax (face centre vs framed centre). That yaw is mocap truth:
  over all CMU frames retargeted to a built-in body it is below 10 deg in half of them, below
  57 deg in 95%, up to 93 deg (09_12); clip 03_01 holds its head ~50 deg off its chest.
"""

import dataclasses

import numpy as np
import pytest

from thfm_synth.assets.library import load_library
from thfm_synth.config import load_config
from thfm_synth.plan.planner import make_plan
from thfm_synth.render.scene import facing
from thfm_synth.render.scene.assemble import assemble

RANGE = (-40.0, 40.0)


@pytest.fixture(scope="module")
def planned(shared_assets, shared_manifest, tmp_path_factory):
    library = load_library([shared_manifest])
    cfg = load_config("paper", overrides={"camera": {"azimuth_deg": list(RANGE)}, "video": {"num_frames": 49}})
    motions = library.by_kind["motions"]
    specs = make_plan(cfg, library, 7, 2 * len(motions))  # every motion twice (balanced plan)
    built_in = [c.id for c in library.by_kind["characters"] if c.format == "anny"]  # no Blender import here
    seen: dict[str, int] = {}
    out = []
    for i, spec in enumerate(specs):
        n = seen[spec.motion_id] = seen.get(spec.motion_id, 0) + 1
        changes = {"camera_framing": "face" if n == 1 else ("full_body", "upper_body")[i % 2]}
        if spec.character_id not in built_in:
            changes["character_id"] = built_in[i % len(built_in)]
        if spec.background_kind == "scene" and library.entry(spec.background_id).format != "procedural":
            changes["background_id"] = "room-living"  # kit scenes are loaded through Blender
        out.append(dataclasses.replace(spec, **changes))
    return library, cfg, out, tmp_path_factory.mktemp("characters")


@pytest.mark.slow
def test_every_motion_faces_the_camera_as_planned(planned):
    library, cfg, specs, cache = planned
    assert {s.motion_id for s in specs} == {m.id for m in library.by_kind["motions"]}
    assert {s.mirror for s in specs} == {True, False} and len({s.background_kind for s in specs}) == 3
    lo, hi = RANGE
    for spec in specs:
        assert spec.camera_azimuth_reference == "subject" and lo <= spec.camera_azimuth_deg <= hi
        asm = assemble(spec, library, cfg.render, cache)
        view = asm.view
        face_angle = np.array(view["face_angle_deg"])
        what = (spec.video_id, spec.motion_id, spec.camera_framing, spec.camera_trajectory, spec.mirror)
        # independent check of the record from the stored camera and joints
        cam = asm.description.camera
        centres = -np.einsum("fji,fj->fi", cam.r, cam.t)
        coco = asm.joints_world["coco17"]
        again = facing.relative_azimuth(centres, facing.face_centre(coco[:, :5]), facing.face_forward(coco[:, :5]))
        np.testing.assert_allclose(again, face_angle, atol=0.01)
        assert 0.0 <= view["face_towards_camera"] <= 1.0
        if spec.camera_framing == "face":
            assert lo - 0.5 <= face_angle[0] <= hi + 0.5, what
            assert face_angle[0] == pytest.approx(spec.camera_azimuth_deg, abs=0.5), what
            assert view["face_in_view"] >= 0.95, what
        else:
            assert lo - 1.0 <= view["azimuth_first_deg"] <= hi + 1.0, what
            smpl = asm.joints_world["smpl24"]
            head_vs_body = facing.wrap(
                facing.yaw_of(facing.face_forward(coco[:1, :5])) - facing.yaw_of(facing.body_forward_smpl24(smpl[:1]))
            )[0]
            # the face is off the body's bearing by the head's own turn (plus <= 5 deg of parallax:
            # the azimuth is measured from the framed centre, the face angle from the face)
            tol = abs(head_vs_body) + 5.0
            assert lo - tol <= face_angle[0] <= hi + tol, (what, face_angle[0], head_vs_body)
