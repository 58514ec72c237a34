"""MakeHuman assets on anny bodies, in pure numpy (no MakeHuman, no Blender).

* `obj.py`: `read_obj` - Wavefront meshes (quads fan-triangulated, per-corner UVs), groups;
* `mhclo.py`: `read_mhclo` - proxy bindings (3 refs + weights + offset, or 1 ref), axis scales,
  `delete_verts`, material, obj_file; references checked against hm08;
* `mhmat.py`: `read_mhmat` - colours, switches and texture maps of a material;
* `assets.py`: `AssetFolder` - the folder's catalogue, parsed-file cache and per-file provenance;
  `makehuman_dir()` - `$THFM_MAKEHUMAN` or the fetch location;
* `helpers.py`: `bind_helpers` / `HelperBinding.rebuild` - MakeHuman's helper vertices (which
  anny drops) bound once to anny's rest surface and rebuilt on every body;
* `fitting.py`: `fit_proxy` - the standard MakeHuman fit with the body's axis scales, plus the
  binding of each fitted vertex to anny body vertices;
* `dress.py`: `dress` - a whole outfit for a body: fitted and skinned pieces, hidden body
  vertices, materials (characters/materials.py) and their textures;
* `fetch.py`: `fetch_makehuman` - the CC0 originals from GitHub (raw files + Git LFS).

Errors (a missing or corrupt file, a proxy that does not fit hm08, an unreadable texture) are
one-line `UserError`s naming the file and the fix.
"""
