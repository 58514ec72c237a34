"""The renderer core: one Cycles render per frame gives RGB and every ground-truth modality.

Workflow (main environment; Blender runs as a child process, see `thfm_synth.blender`)::

    desc = SceneDescription(camera=Camera.from_track(track), objects=[...], world=..., lights=[...])
    desc.save(scene_dir)                                  # scene.json + arrays.npz (description.py)
    info = runner.render(scene_dir, render_dir)           # blender_scripts/render_scene.py
    outputs.convert_render(render_dir, data_dir, desc.camera.r, delete_raw=True)
    frame = outputs.read_frame(data_dir, 0)               # rgb, depth, normal, mask, iuv, ...

- `description`: renderer-agnostic dataclasses (camera per frame as K, R, t; primitives,
  `mesh_npz` objects and `scene_file` objects (a .blend/.fbx/.glb placed by a pose); world;
  lights; render settings) and their JSON + npz folder format.
- `blender_scripts/render_scene.py`: the only Blender adapter. Two view layers in one render
  call: `rgb` (N samples, denoised, plus an antialiased subject-coverage AOV) and `labels`
  (1 sample = the pixel-centre ray, a label material override: depth, normal, object index,
  part / part UV / canonical AOVs from mesh attributes). One multilayer EXR per frame.
- `outputs`: that EXR -> stored files (PNG / EXR per modality) and readers.
- `analytic`: closed-form test scenes (sphere on a plane) and a labelled mannequin.
- `runner`: renders a saved description as one `RenderJob` through `thfm_synth.blender`
  (a fresh child, or the farm's long-lived one) and re-raises its failures and warnings.

Contract for any Blender-side object builder (e.g. a character loader), every name from
`thfm_synth/blender/contract.py`: a mesh joins the label passes by carrying the attributes
`ATTR_PART` (FACE, float, 1..24), `ATTR_PART_UV` (CORNER, float vector (u, v, 0)) and
`ATTR_CANONICAL` (POINT, float vector), and the mask by the object custom property
`PROP_SUBJECT = 1.0`; its materials must contain the `AOV_FG` AOV node
(`render_scene.subject_aov`). `pass_index` is its instance id.
"""
