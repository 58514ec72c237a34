"""Load a baked character, pose it, and write the evaluated (skinned) vertices.

Usage (render child): character_posecheck.py -- JOB_FILE, a `PosecheckJob`
(thfm_synth/blender/contract.py): character (CHARACTER.npz), pose (POSE.npz), out (OUT.npz).
POSE.npz holds `quats` (J, 4) w,x,y,z local rotations (or (T, J, 4) for T frames) and
`root` (3,) / (T, 3) world position of the root joint's head (optional: rest position).
OUT.npz gets `vertices` ((V, 3) or (T, V, 3)), `bone_matrices` ((J, 4, 4) or (T, J, 4, 4)),
`timing` (build seconds, pose+evaluate seconds), `part` (the thfm_vertex_part attribute read back)
and `report_json` (mesh attributes, vertex group / material / bone / polygon counts).
Used by the tests to compare Blender's skinning with numpy's, and handy to check a character by hand.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

import character_load as cl  # noqa: E402
from bridge import contract  # noqa: E402


def posecheck(job):
    char_path, pose_path, out_path = job.character, job.pose, job.out
    bpy.ops.wm.read_factory_settings(use_empty=True)
    t0 = time.perf_counter()
    data = cl.load_npz(char_path)
    rig, body = cl.build_character(data, materials=True)
    t1 = time.perf_counter()
    with np.load(pose_path, allow_pickle=False) as z:
        quats = z["quats"]
        root = z["root"] if "root" in z.files else None
    if quats.ndim == 2:
        cl.set_pose(rig, quats, root)
        verts = cl.evaluated_vertices(body)
        mats = cl.bone_world_matrices(rig)
    else:
        if root is None:
            root = np.repeat(data["joint_heads"][:1].astype(np.float64), len(quats), axis=0)
        cl.animate(rig, quats, root, frame_start=1)
        vs, ms = [], []
        for f in range(len(quats)):
            bpy.context.scene.frame_set(1 + f)
            vs.append(cl.evaluated_vertices(body))
            ms.append(cl.bone_world_matrices(rig))
        verts, mats = np.stack(vs), np.stack(ms)
    t2 = time.perf_counter()
    me = body.data
    attrs = {a.name: [a.domain, a.data_type] for a in me.attributes}
    part = np.empty(len(me.vertices), np.int32)
    me.attributes[cl.ATTR_VERTEX_PART].data.foreach_get("value", part)
    report = {
        "attributes": attrs,
        "vertex_groups": len(body.vertex_groups),
        "materials": len(me.materials),
        "bones": len(rig.data.bones),
        "polygons": len(me.polygons),
    }
    tmp = out_path + ".tmp.npz"
    np.savez(
        tmp,
        vertices=verts,
        bone_matrices=mats,
        timing=np.array([t1 - t0, t2 - t1]),
        part=part,
        report_json=np.array(json.dumps(report)),
    )
    os.replace(tmp, out_path)
    return {"build_seconds": t1 - t0, "pose_seconds": t2 - t1, "vertices": int(len(data["vertices"]))}


if __name__ == "__main__":
    contract.script_main(contract.SCRIPT_POSECHECK, posecheck)
