"""Characters: built-in parametric bodies, rigged-file import, and the baked character format.

Public API
----------
* `build_characters(count, seed, out_dir, age_range="adult") -> Manifest` - bake built-in
  anny bodies `anny-<seed>-<i:05d>.npz` plus `out_dir/manifest.yaml` (builtin.py);
* `bake_builtin(entry, cache_dir) -> Path` - materialise a `format: anny` manifest entry;
* `character_npz(entry, file_path, cache_dir) -> Path` - the baked npz of any character entry
  (anny -> bake_builtin, npz -> itself, fbx/glb/gltf -> cached import_character);
* SMPL-X bodies from the user's model files: `build_characters(..., backend="smplx", model_dir=DIR)`,
  `smplx_body.bake_smplx`, the numpy model `smplx_model.SmplxModel` (safe `.npz` loading, exact
  forward pass) and posing with SMPL-X parameters `smplx_motion.smplx_motion`;
* `import_character(path, out_npz, rig="auto", height_m=None) -> Character` - FBX/GLB/glTF
  -> baked npz through Blender (importer.py);
* `load_character(path) -> Character`, `save_character(path, c)`, `validate_character(c)`;
* `forward_kinematics`, `linear_blend_skinning`, `local_rotations_from_world`, `ground_surface`
  (the lowest sole/body points for mesh-grounded retargeting) (skinning.py);
* `landmarks.head_top_rest(c)`, `landmarks.face_points_rest(c)`: head top and COCO face points
  of any character's rest mesh (landmarks.py);
* `map_rig(bone_names, rig="auto")`, `RIG_TABLES`, `CANONICAL_JOINTS` (rigs.py);
* Blender side: `blender_scripts/character_load.py` (build, pose, animate, evaluate).

Built-in bodies wear real CC0 MakeHuman assets when a MakeHuman folder is configured
(`makehuman/`: `$THFM_MAKEHUMAN`, else where `thfm-synth assets fetch makehuman` puts it,
`~/.cache/thfm-synth/makehuman`): a skin texture matched to age, sex and ancestry and toned
continuously over Fitzpatrick I-VI, a fitted outfit (top and bottom dyed apart, some printed),
shoes, a hairstyle, eyebrows and eyelashes as alpha cards, eyes and teeth (appearance.py,
makehuman/dress.py). Without a folder they keep the procedural look (garments.py) and warn
once. `preview.preview_characters` renders a contact sheet of a folder (`thfm-synth assets
preview-characters`); `pokethrough.pokethrough` measures skin showing through cloth.

Baked character format (npz, `allow_pickle=False`, format_version 2; 1 is still read)
------------------------------------------------------------------------------------
World frame (thfm_synth.conventions): right-handed, metres, Z up, rest pose standing on
z = 0 (lowest vertex exactly at 0), facing -Y, pelvis (joint 0) above the origin.

==========================  ============  =====================================================
key                         dtype/shape   meaning
==========================  ============  =====================================================
format_version              int32 ()      2 (2: textures by reference into the folder's store)
vertices                    f4 (V, 3)     rest-pose positions
faces                       i4 (F, 3)     triangles, counter-clockwise seen from outside
uv                          f4 (U, 2)     texture coordinates (all 0 when the source had none:
                                          meta.has_uv)
face_uv                     i4 (F, 3)     per face corner, index into uv
joint_names                 str (J,)      canonical CMU name (Hips, LeftUpLeg, ..., see rigs.py)
                                          for mapped joints, the source name for extra joints
                                          (prefixed `x:` only if it would clash)
joint_source_names          str (J,)      the bone names in the source rig
joint_parents               i4 (J,)       parent index, -1 for joint 0 (Hips, the only root);
                                          parents come before children
joint_heads, joint_tails    f4 (J, 3)     rest head/tail positions (Blender bone ends)
joint_rest_rotations        f4 (J, 3, 3)  bone-to-world rest rotation (columns = bone axes);
                                          column 1 (Y) points head -> tail, as in Blender
skin_indices                i2 (V, K)     top-K joint indices per vertex (K <= 8), descending
skin_weights                f4 (V, K)     their weights: multiples of 1/4096 summing to
                                          exactly 1 for every vertex (checked: no vertex is
                                          unweighted); padding entries are index 0, weight 0
vertex_garment              i2 (V,)       0 = body, g > 0 = garments_json[g - 1]
face_material               i2 (F,)       index into materials_json
vertex_part                 u1 (V,)       DensePose body part 1..24 (labels.py)
vertex_part_uv              f4 (V, 2)     (U, V) in [0, 1] in the part's chart (labels.py)
vertex_canonical            f4 (V, 3)     canonical coordinates in [0, 1]^3 (labels.py)
canonical_min/_max          f4 (3,)       the rest-pose box those coordinates normalise
face_part                   u1 (F,)       part per face (majority of its vertices)
corner_part_uv              f4 (F, 3, 2)  chart UV per face corner in the face's part
materials_json              str ()        JSON list of materials in the schema of
                                          materials.py (kind skin/eyes/teeth/mouth/cloth/shoes/
                                          hair/brows/lashes/source, base colour + map, tint,
                                          dye, HSV, print, normal map, roughness/gloss,
                                          metallic, alpha mode + map, subsurface, sheen, coat);
                                          textures are {path: "textures/<sha256>.<ext>",
                                          sha256} relative to the npz's folder (textures.py)
garments_json               str ()        JSON list: {id, name (outfit/shoes/hair/eyebrows/
                                          eyelashes/eyes/teeth, or procedural top/bottom/skirt/
                                          shoes/hair/headwear), kind (makehuman/shell/skirt/
                                          hull), asset, vertices, faces, ...}
meta_json                   str ()        JSON: id, source, licence, rig, params (every sampled
                                          choice of a built-in, `look` makehuman/procedural),
                                          height_m, skeleton clean-up, import details (rig_map,
                                          rotation, rescale, ...); built-ins dressed with
                                          MakeHuman assets add `makehuman`: {folder_identity,
                                          assets: [{role, asset, file, sha256, licence, source,
                                          note}] for every file used};
                                          SMPL-X bodies: `smplx` (model file and sha256,
                                          gender, betas, expression, hand pose,
                                          world_from_model; smplx_body.py)
==========================  ============  =====================================================

Pose convention (numpy skinning.py and Blender character_load.py agree to < 1 mm): per joint
a local quaternion (w, x, y, z) = Blender's pose-bone `rotation_quaternion`, plus the world
position of joint 0's head.

Textures live beside the npz files in `textures/<sha256>.<ext>` (one copy per image for a
whole library folder; `save_character` stores them, `textures.verify_folder` checks a copied
folder). A library folder is therefore self-contained: npz files + manifest.yaml + textures/.

Labels (parts, part UV charts, canonical coordinates) are documented in labels.py; they are
computed by one function for built-in bodies and imported rigs: skin weights -> dominant
bone -> body segment -> front/back (rest facing -Y) or head left/right (x); garments, shoes,
eyes and teeth take the part, part UV and canonical coordinates of the body vertices they
are bound to (a sleeve is the arm), hair, eyebrows and eyelashes the head's; alpha cards are
labelled where alpha >= 0.5 (materials.py).
"""

from thfm_synth.assets.characters.builtin import bake_builtin, build_characters, character_npz
from thfm_synth.assets.characters.format import Character, load_character, save_character, validate_character
from thfm_synth.assets.characters.importer import import_character
from thfm_synth.assets.characters.labels import NUM_PARTS, PART_NAMES, compute_labels
from thfm_synth.assets.characters.rigs import CANONICAL_JOINTS, RIG_TABLES, map_rig
from thfm_synth.assets.characters.skinning import forward_kinematics, linear_blend_skinning, local_rotations_from_world

__all__ = [
    "CANONICAL_JOINTS",
    "Character",
    "NUM_PARTS",
    "PART_NAMES",
    "RIG_TABLES",
    "bake_builtin",
    "build_characters",
    "character_npz",
    "compute_labels",
    "forward_kinematics",
    "import_character",
    "linear_blend_skinning",
    "load_character",
    "local_rotations_from_world",
    "map_rig",
    "save_character",
    "validate_character",
]
