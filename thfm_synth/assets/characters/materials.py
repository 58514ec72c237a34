"""The material schema of baked characters (`materials_json`), one definition for every source.

Built-in bodies (MakeHuman skins, garments and hair cards, or the procedural fallback) and
imported characters (FBX/glTF scans) store their materials as a JSON list of objects with the
keys below. Only `name` and `kind` are required; every other key has the default shown, so a
material states only what it has. Colours are *linear* Rec.709 RGB in [0, 1]. A texture is a
reference `{"path": "textures/<sha256>.<ext>", "sha256": "<sha256>"}` into the content-
addressed store beside the character's npz (textures.py), never an absolute path.

==================  =======================  ================================================
key                 default                  meaning
==================  =======================  ================================================
name                (required)               unique within the character
kind                (required)               skin | eyes | teeth | mouth | cloth | shoes | hair |
                                             brows | lashes | source: selects the shader family
                                             (skin: random-walk subsurface; eyes: a clear coat
                                             for the cornea; hair/brows/lashes: alpha cards)
base_color          [0.8, 0.8, 0.8]          colour where there is no map
base_color_map      null                     texture (sRGB) on the character's UVs
tint                [1, 1, 1]                per-channel multiplier of the map (skin tone)
recolor             null                     {"color": rgb, "amount": a, "luminance": L}: dye the
                                             map, keeping its shading: mix(map, color *
                                             lum(map) / L, a); L = the map's mean luminance over
                                             the faces that use it (lum: Rec.709 Y, linear)
hsv                 [0, 1, 1]                hue shift (turns), saturation and value factors,
                                             applied after tint and recolor
pattern             null                     {"type": stripes | checker | dots, "color2": rgb,
                                             "scale_m": period in metres, "axis": x | z,
                                             "amount": 0..1}: a print over the dyed colour,
                                             shaded like it (procedural, object space)
normal_map          null                     tangent-space normal map (OpenGL +Y), non-colour
normal_strength     1.0
roughness           0.5
roughness_map       null                     non-colour, red channel
roughness_is_gloss  false                    the roughness map holds gloss: used inverted
metallic            0.0
metallic_map        null                     non-colour, red channel
specular            0.5                      Principled "IOR level" (0.5 = plain dielectric)
ior                 1.45
alpha_mode          "opaque"                 opaque | mask | blend (glTF's names), see below
alpha_map           null                     texture whose alpha (alpha_channel "a") or red
alpha_channel       "a"                      ("r") channel is the opacity
alpha_cutoff        0.5                      mask: cut-off; blend: the label rule's threshold
opacity             1.0                      multiplies the map's alpha
subsurface          null                     {"weight": w, "radius": [r, g, b] metres (mean
                                             free path per channel), "color": rgb or null
                                             (null: the base colour)}
sheen               null                     {"weight": w, "roughness": r, "tint": rgb}
coat                null                     {"weight": w, "roughness": r, "ior": n}
double_sided        true
==================  =======================  ================================================

Alpha and the labels (the rule every modality follows):
* `mask`: a surface point with alpha < alpha_cutoff does not exist, for RGB, the soft mask and
  every label;
* `blend` (hair, eyebrow and eyelash cards): RGB and the soft mask see the card with its
  fractional coverage (the renderer draws it stochastically per sample, so the mask, the
  `fg` AOV averaged over the RGB samples, is the alpha-composited matte); depth, normals,
  object index, part, part UV and canonical coordinates come from the first surface along
  the pixel-centre ray whose alpha is >= alpha_cutoff (0.5), i.e. a card texel with alpha
  below it is skipped by the label ray.

Older files (format 1) stored `texture` (an absolute path), `subsurface` and `sheen` as
numbers and `pattern` with `scale_m`; `normalise` reads them too.
"""

from __future__ import annotations

import copy

KINDS = ("skin", "eyes", "teeth", "mouth", "cloth", "shoes", "hair", "brows", "lashes", "source")
ALPHA_MODES = ("opaque", "mask", "blend")
TEXTURE_KEYS = ("base_color_map", "normal_map", "roughness_map", "metallic_map", "alpha_map")

DEFAULTS = {
    "base_color": [0.8, 0.8, 0.8],
    "base_color_map": None,
    "tint": [1.0, 1.0, 1.0],
    "recolor": None,
    "hsv": [0.0, 1.0, 1.0],
    "pattern": None,
    "normal_map": None,
    "normal_strength": 1.0,
    "roughness": 0.5,
    "roughness_map": None,
    "roughness_is_gloss": False,
    "metallic": 0.0,
    "metallic_map": None,
    "specular": 0.5,
    "ior": 1.45,
    "alpha_mode": "opaque",
    "alpha_map": None,
    "alpha_channel": "a",
    "alpha_cutoff": 0.5,
    "opacity": 1.0,
    "subsurface": None,
    "sheen": None,
    "coat": None,
    "double_sided": True,
}


def material(name: str, kind: str, **fields) -> dict:
    """A schema material with only the given non-default fields (validated)."""
    m = {"name": name, "kind": kind}
    for k, v in fields.items():
        if k not in DEFAULTS:
            raise KeyError(f"unknown material field {k!r}")
        if v != DEFAULTS[k]:
            m[k] = v
    validate(m)
    return m


def normalise(m: dict) -> dict:
    """Every field of the schema filled in; legacy (format 1) keys converted. Does not modify `m`."""
    out = copy.deepcopy(DEFAULTS)
    m = dict(m)
    legacy_texture = m.pop("texture", None)
    for k, v in m.items():
        out[k] = copy.deepcopy(v)
    if legacy_texture and out["base_color_map"] is None:
        out["base_color_map"] = {"path": str(legacy_texture), "sha256": None}
    if isinstance(out["subsurface"], (int, float)):
        out["subsurface"] = (
            {"weight": float(out["subsurface"]), "radius": [0.01, 0.004, 0.002], "color": None}
            if out["subsurface"] > 0
            else None
        )
    if isinstance(out["sheen"], (int, float)):
        out["sheen"] = (
            {"weight": float(out["sheen"]), "roughness": 0.5, "tint": [1.0, 1.0, 1.0]} if out["sheen"] > 0 else None
        )
    if out["kind"] not in KINDS:
        out["kind"] = "source"
    return out


def validate(m: dict) -> None:
    """Raise ValueError on a material that breaks the schema (a bug in whoever wrote it)."""
    if not isinstance(m.get("name"), str) or m.get("kind") not in KINDS:
        raise ValueError(f"material needs a name and a kind in {KINDS}: {m}")
    n = normalise(m)
    for key in TEXTURE_KEYS:
        ref = n[key]
        if ref is not None and not (isinstance(ref, dict) and isinstance(ref.get("path"), str)):
            raise ValueError(f"material {m['name']}: {key} must be a texture reference")
    if n["alpha_mode"] not in ALPHA_MODES:
        raise ValueError(f"material {m['name']}: alpha_mode {n['alpha_mode']!r} not in {ALPHA_MODES}")
    if n["alpha_mode"] != "opaque" and n["alpha_map"] is None and n["opacity"] >= 1.0:
        raise ValueError(f"material {m['name']}: alpha_mode {n['alpha_mode']} needs an alpha_map or opacity < 1")
    for key in ("base_color", "tint"):
        if len(n[key]) != 3:
            raise ValueError(f"material {m['name']}: {key} must be 3 numbers")


def texture_refs(materials: list[dict]) -> list[tuple[int, str, dict]]:
    """(material index, key, reference) of every texture the materials use."""
    out = []
    for i, m in enumerate(materials):
        for key in TEXTURE_KEYS:
            ref = m.get(key)
            if isinstance(ref, dict) and ref.get("sha256"):
                out.append((i, key, ref))
    return out
