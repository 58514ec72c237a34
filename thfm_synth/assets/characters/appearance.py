"""Random appearance of built-in bodies: skin tone, eyes, hair, headwear, clothing, colours, patterns.

`sample_appearance(rng, phenotype)` returns a plain JSON-able dict (recorded in the
manifest entry's params and in the baked file's meta), `material_table(appearance)` the
material list of the baked file. Colours are stored both as display sRGB (0-255, what
a person would pick) and as linear RGB base colour (what the renderer uses).

Skin tones span the full Fitzpatrick range: the type I..VI is drawn uniformly, then a
continuous tone is interpolated between the neighbouring reference albedos below (sRGB of
typical skin reflectance per type, from light to deep) with a small redness jitter.

With a MakeHuman asset folder (makehuman/assets.py), `sample_makehuman_appearance` picks real
assets instead. The skin tone t in [0, 5] is drawn first, uniform over the six Fitzpatrick
types (t interpolates the six reference albedos above), then an ancestry whose range holds it
(Caucasian t <= 2.6, Asian 0.9-3.6, African >= 2.6) and the age group (young < 35 <=
middle-aged < 55 <= old, blended near the borders): together with the sex they pick the
skin texture, and the renderer multiplies that texture by target / (its mean skin colour),
a continuous tone that keeps its detail (pores, lips, veins). An outfit (top and bottom dyed
independently, some with a printed pattern), shoes (some dyed), a hairstyle (or none) dyed to
a natural hair colour (grey or white with age; blond, red and light irises only with light
Caucasian skin), eyebrows and eyelashes in a darker shade of it, eye colour and teeth
complete the person. Every choice is an asset key of the folder plus numbers, recorded in
the character's params.
"""

from __future__ import annotations

import colorsys

import numpy as np

# Reference skin albedo per Fitzpatrick type I..VI (display sRGB).
FITZPATRICK_SRGB = np.array(
    [
        [246, 214, 190],  # I
        [234, 189, 157],  # II
        [214, 160, 122],  # III
        [182, 124, 88],  # IV
        [132, 84, 56],  # V
        [84, 52, 36],  # VI
    ],
    dtype=np.float64,
)

EYE_COLOURS = {
    "dark_brown": (60, 36, 22),
    "brown": (99, 60, 33),
    "hazel": (126, 94, 50),
    "green": (88, 112, 68),
    "blue": (82, 120, 160),
    "grey": (120, 128, 134),
}
HAIR_COLOURS = {
    "black": (20, 17, 15),
    "dark_brown": (48, 32, 22),
    "brown": (92, 62, 40),
    "auburn": (120, 54, 30),
    "blond": (196, 160, 102),
    "light_blond": (224, 200, 150),
    "red": (150, 62, 30),
    "grey": (150, 146, 140),
    "white": (222, 220, 214),
}
FABRIC_COLOURS = {
    "black": (25, 25, 28),
    "white": (235, 235, 230),
    "light_grey": (180, 180, 178),
    "charcoal": (60, 62, 66),
    "navy": (30, 40, 80),
    "denim": (60, 85, 125),
    "light_denim": (120, 145, 180),
    "royal_blue": (40, 70, 170),
    "sky_blue": (135, 180, 220),
    "teal": (20, 120, 120),
    "olive": (100, 105, 50),
    "forest_green": (35, 85, 50),
    "khaki": (190, 170, 120),
    "beige": (215, 195, 165),
    "brown": (100, 70, 45),
    "burgundy": (110, 25, 40),
    "red": (190, 35, 40),
    "orange": (220, 110, 40),
    "mustard": (210, 165, 40),
    "pink": (230, 150, 170),
    "purple": (100, 60, 130),
    "lavender": (180, 165, 210),
}
SHOE_COLOURS = ("black", "white", "brown", "charcoal", "navy", "beige", "red", "light_grey")

TOPS = {  # name: (probability, sleeve length along the arm 0..1, hem height on the torso axis, thickness m)
    "tank": (0.12, 0.0, 0.02, 0.004),
    "tshirt": (0.38, 0.32, -0.01, 0.005),
    "longsleeve": (0.25, 0.93, -0.01, 0.006),
    "jacket": (0.25, 0.95, -0.04, 0.016),
}
BOTTOMS = {  # name: (probability, leg length 0..1 along hip->ankle, thickness m)
    "shorts": (0.2, 0.38, 0.006),
    "capri": (0.1, 0.75, 0.006),
    "trousers": (0.5, 1.0, 0.007),
    "skirt": (0.2, 0.12, 0.004),  # a short under-layer shell; the skirt itself is separate geometry
}
SKIRT_LENGTHS = {"mini": 0.32, "knee": 0.55, "midi": 0.78}  # hem along the hip->knee->ankle line (0..1 = hip..ankle/2)
SHOES = {"sneakers": (0.55, 0.95, 0.010), "boots": (0.3, 0.72, 0.012), "barefoot": (0.15, None, 0.0)}
HAIR = {  # name: (front, side, back hairline elevations in degrees about the head centre, thickness m)
    "bald": None,
    "buzz": (42.0, 26.0, -20.0, 0.003),
    "short": (38.0, 20.0, -30.0, 0.012),
    "medium": (34.0, 0.0, -50.0, 0.020),
    "long": (32.0, -25.0, -75.0, 0.026),
}
HEADWEAR = {"none": 0.82, "beanie": 0.18}
PATTERNS = {"solid": 0.6, "stripes": 0.2, "checker": 0.1, "dots": 0.1}


def srgb_to_linear(c) -> list[float]:
    c = np.asarray(c, np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return [round(float(x), 5) for x in lin]


def _choice(rng: np.random.Generator, table: dict, weights=None) -> str:
    keys = list(table)
    if weights is None:
        weights = [v if isinstance(v, (int, float)) else v[0] for v in table.values()]
    p = np.asarray(weights, np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _jitter(rng: np.random.Generator, srgb, amount: float = 0.06) -> list[int]:
    h, s, v = colorsys.rgb_to_hsv(*(np.asarray(srgb) / 255.0))
    h = (h + rng.uniform(-0.02, 0.02)) % 1.0
    s = float(np.clip(s * rng.uniform(1 - amount * 2, 1 + amount * 2), 0, 1))
    v = float(np.clip(v * rng.uniform(1 - amount, 1 + amount), 0, 1))
    return [int(round(x * 255)) for x in colorsys.hsv_to_rgb(h, s, v)]


def _fabric(rng: np.random.Generator, names=None) -> dict:
    name = str(rng.choice(list(names or FABRIC_COLOURS)))
    return {"colour": name, "srgb": _jitter(rng, FABRIC_COLOURS[name])}


def _pattern(rng: np.random.Generator, base: dict, allow: bool = True) -> dict:
    kind = _choice(rng, PATTERNS) if allow else "solid"
    if kind == "solid":
        return {"type": "solid"}
    other = _fabric(rng)
    while other["colour"] == base["colour"]:
        other = _fabric(rng)
    scale = {"stripes": (0.012, 0.05), "checker": (0.02, 0.06), "dots": (0.008, 0.02)}[kind]
    return {
        "type": kind,
        "colour2": other["colour"],
        "srgb2": other["srgb"],
        "scale_m": round(float(rng.uniform(*scale)), 4),
        "axis": "z" if kind != "stripes" or rng.random() < 0.75 else "x",
    }


def sample_appearance(rng: np.random.Generator, phenotype: dict) -> dict:
    """All appearance choices of one character (JSON-able)."""
    feminine = phenotype["gender"] > 0.5
    age_years = phenotype.get("age_years", 35.0)
    fitz = int(rng.integers(1, 7))
    t = float(np.clip(fitz - 1 + rng.uniform(-0.5, 0.5), 0.0, 5.0))
    lo, frac = int(np.floor(t)), t - np.floor(t)
    srgb = FITZPATRICK_SRGB[lo] * (1 - frac) + FITZPATRICK_SRGB[min(lo + 1, 5)] * frac
    srgb = srgb * np.array([1.0 + rng.uniform(-0.03, 0.04), 1.0, 1.0 + rng.uniform(-0.04, 0.02)])
    skin = {
        "fitzpatrick": fitz,
        "tone": round(t, 3),
        "srgb": [int(x) for x in np.clip(np.round(srgb), 0, 255)],
        "roughness": round(float(rng.uniform(0.4, 0.6)), 3),
    }

    eye_probs = [0.3, 0.25, 0.12, 0.1, 0.15, 0.08] if fitz <= 3 else [0.55, 0.35, 0.06, 0.02, 0.01, 0.01]
    eyes = _choice(rng, EYE_COLOURS, eye_probs)

    hair_style_w = (
        {"bald": 0.02, "buzz": 0.05, "short": 0.2, "medium": 0.35, "long": 0.38}
        if feminine
        else {"bald": 0.12, "buzz": 0.2, "short": 0.5, "medium": 0.13, "long": 0.05}
    )
    style = _choice(rng, hair_style_w, list(hair_style_w.values()))
    if age_years > 55 and rng.random() < min(0.9, (age_years - 45) / 35):
        hair_colour = "grey" if rng.random() < 0.6 else "white"
    else:
        w = [0.3, 0.25, 0.2, 0.05, 0.1, 0.04, 0.06, 0.0, 0.0] if fitz <= 3 else [0.6, 0.3, 0.08, 0.01, 0.01, 0, 0, 0, 0]
        hair_colour = _choice(rng, HAIR_COLOURS, w)
    hair = {
        "style": style,
        "colour": hair_colour,
        "srgb": _jitter(rng, HAIR_COLOURS[hair_colour], 0.04),
        "roughness": round(float(rng.uniform(0.3, 0.5)), 3),
    }

    headwear = {"type": _choice(rng, HEADWEAR, list(HEADWEAR.values()))}
    if headwear["type"] != "none":
        headwear.update(_fabric(rng))

    bottom_w = (
        {"shorts": 0.15, "capri": 0.12, "trousers": 0.4, "skirt": 0.33}
        if feminine
        else {"shorts": 0.25, "capri": 0.05, "trousers": 0.66, "skirt": 0.04}
    )
    bottom_type = _choice(rng, BOTTOMS, list(bottom_w.values()))
    bottom = {
        "type": bottom_type,
        **_fabric(
            rng,
            [
                "black",
                "navy",
                "denim",
                "light_denim",
                "charcoal",
                "khaki",
                "beige",
                "olive",
                "brown",
                "light_grey",
                "white",
                "burgundy",
            ]
            if bottom_type != "skirt"
            else None,
        ),
    }
    bottom["pattern"] = _pattern(rng, bottom, allow=rng.random() < 0.3)
    bottom["leg"] = round(float(BOTTOMS[bottom_type][1] * rng.uniform(0.92, 1.0)), 3)
    bottom["thickness_m"] = BOTTOMS[bottom_type][2]
    bottom["roughness"] = round(float(rng.uniform(0.6, 0.95)), 3)
    if bottom_type == "skirt":
        bottom["skirt_length"] = _choice(rng, SKIRT_LENGTHS, [0.35, 0.4, 0.25])
        bottom["flare"] = round(float(rng.uniform(0.02, 0.12)), 3)

    top_type = _choice(rng, TOPS)
    top = {"type": top_type, **_fabric(rng)}
    top["pattern"] = _pattern(rng, top)
    top["sleeve"] = round(float(TOPS[top_type][1] * rng.uniform(0.9, 1.05)) if TOPS[top_type][1] else 0.0, 3)
    top["hem"] = round(float(TOPS[top_type][2] + rng.uniform(-0.03, 0.03)), 3)
    # a top always lies over the bottom's waistband
    top["thickness_m"] = round(max(TOPS[top_type][3], bottom["thickness_m"] + 0.003), 4)
    top["roughness"] = round(float(rng.uniform(0.55, 0.95)), 3)
    if bottom_type == "skirt" and rng.random() < 0.35:  # a dress: one fabric for top and skirt
        bottom.update({k: top[k] for k in ("colour", "srgb", "pattern", "roughness")})
        bottom["dress"] = True

    shoe_type = _choice(rng, SHOES)
    shoes = {"type": shoe_type}
    if shoe_type != "barefoot":
        shoes.update(_fabric(rng, SHOE_COLOURS))
        shoes["ankle"] = SHOES[shoe_type][1]
        shoes["thickness_m"] = SHOES[shoe_type][2]
        shoes["sole_m"] = round(float(rng.uniform(0.01, 0.03)), 3)
        shoes["roughness"] = round(float(rng.uniform(0.35, 0.8)), 3)
    return {
        "skin": skin,
        "eyes": {"colour": eyes, "srgb": list(EYE_COLOURS[eyes])},
        "hair": hair,
        "headwear": headwear,
        "top": top,
        "bottom": bottom,
        "shoes": shoes,
    }


def _material(name: str, kind: str, srgb, roughness: float, pattern: dict | None = None, **extra) -> dict:
    from thfm_synth.assets.characters.materials import material

    fields = {"base_color": srgb_to_linear(srgb), "roughness": float(roughness), **extra}
    if pattern and pattern.get("type", "solid") != "solid":
        fields["pattern"] = {
            "type": pattern["type"],
            "color2": srgb_to_linear(pattern["srgb2"]),
            "scale_m": pattern["scale_m"],
            "axis": pattern["axis"],
            "amount": 1.0,
        }
    return material(name, kind, **fields)


# Fixed material slots of a built-in body (the garment slots exist even when unused, so ids are stable).
MATERIAL_SLOTS = ("skin", "sclera", "iris", "mouth", "top", "bottom", "shoes", "hair", "headwear")


def material_table(app: dict) -> list[dict]:
    skin = app["skin"]
    mats = [
        _material(
            "skin",
            "skin",
            skin["srgb"],
            skin["roughness"],
            subsurface={"weight": 0.15, "radius": [0.0045, 0.0017, 0.0009], "color": None},
        ),
        _material("sclera", "eyes", (225, 222, 215), 0.1),
        _material("iris", "eyes", app["eyes"]["srgb"], 0.1),
        _material("mouth", "mouth", (150, 70, 70), 0.4),
    ]
    for slot in ("top", "bottom", "shoes"):
        g = app[slot]
        srgb = g.get("srgb", skin["srgb"])
        mats.append(
            _material(
                slot,
                "cloth" if slot != "shoes" else "shoes",
                srgb,
                g.get("roughness", 0.7),
                g.get("pattern"),
                **({"sheen": {"weight": 0.3, "roughness": 0.5, "tint": [1.0, 1.0, 1.0]}} if slot != "shoes" else {}),
            )
        )
    mats.append(_material("hair", "hair", app["hair"]["srgb"], app["hair"]["roughness"]))
    hw = app["headwear"]
    mats.append(
        _material(
            "headwear",
            "cloth",
            hw.get("srgb", app["hair"]["srgb"]),
            0.9,
            sheen={"weight": 0.3, "roughness": 0.5, "tint": [1.0, 1.0, 1.0]},
        )
    )
    return mats


# ---------------------------------------------------------------------------- MakeHuman assets
ANCESTRY_TONE = {"caucasian": (-0.5, 2.6), "asian": (0.9, 3.6), "african": (2.6, 5.5)}
AGE_GROUPS = (("young", 0.0, 35.0), ("middleage", 35.0, 55.0), ("old", 55.0, 200.0))
# hairstyle weights by presentation; "none" = bald / shaved
MH_HAIR = {
    "female": {
        "long01": 0.24,
        "bob02": 0.16,
        "ponytail01": 0.18,
        "braid01": 0.12,
        "short02": 0.12,
        "afro01": 0.08,
        "short04": 0.04,
        "short01": 0.03,
        "none": 0.03,
    },
    "male": {
        "short01": 0.22,
        "short02": 0.24,
        "short04": 0.2,
        "afro01": 0.08,
        "long01": 0.03,
        "ponytail01": 0.02,
        "none": 0.21,
    },
}
# outfits a person of each presentation may wear (weights); unknown outfits in a folder weigh 1
MH_OUTFITS = {
    "female": {
        "female_casualsuit01": 1.0,
        "female_casualsuit02": 1.0,
        "female_elegantsuit01": 1.0,
        "female_sportsuit01": 1.0,
        "male_casualsuit01": 0.3,
        "male_casualsuit02": 0.3,
        "male_casualsuit04": 0.3,
        "male_casualsuit06": 0.4,
        "male_worksuit01": 0.2,
    },
    "male": {
        "male_casualsuit01": 1.0,
        "male_casualsuit02": 1.0,
        "male_casualsuit03": 1.0,
        "male_casualsuit04": 1.0,
        "male_casualsuit05": 1.0,
        "male_casualsuit06": 1.0,
        "male_elegantsuit01": 0.8,
        "male_worksuit01": 0.6,
    },
}
TOP_DYES = tuple(FABRIC_COLOURS)
BOTTOM_DYES = (
    "black",
    "navy",
    "denim",
    "light_denim",
    "charcoal",
    "khaki",
    "beige",
    "olive",
    "brown",
    "light_grey",
    "burgundy",
    "forest_green",
)
MH_HAIR_COLOUR_WEIGHTS = {
    "caucasian": [0.16, 0.26, 0.22, 0.07, 0.14, 0.07, 0.08, 0.0, 0.0],
    "other": [0.7, 0.24, 0.05, 0.005, 0.005, 0.0, 0.0, 0.0, 0.0],
}
EYE_MATERIALS = {  # MakeHuman eye material -> weight for light / dark skin tones
    "brown": (0.25, 0.6),
    "brownlight": (0.15, 0.3),
    "blue": (0.12, 0.02),
    "bluegreen": (0.08, 0.02),
    "deepblue": (0.06, 0.01),
    "green": (0.1, 0.02),
    "grey": (0.1, 0.02),
    "ice": (0.04, 0.005),
    "lightblue": (0.1, 0.015),
}


def _weighted_key(rng: np.random.Generator, weights: dict, available) -> str:
    keys = [k for k in weights if k in available or k == "none"]
    p = np.array([weights[k] for k in keys], np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _age_group(rng: np.random.Generator, years: float) -> str:
    # soft borders: within 5 years of a border either side's texture may be used
    for name, lo, hi in AGE_GROUPS:
        if lo <= years < hi:
            if hi < 200 and years > hi - 5 and rng.random() < (years - (hi - 5)) / 10:
                return AGE_GROUPS[[g[0] for g in AGE_GROUPS].index(name) + 1][0]
            if lo > 0 and years < lo + 5 and rng.random() < ((lo + 5) - years) / 10:
                return AGE_GROUPS[[g[0] for g in AGE_GROUPS].index(name) - 1][0]
            return name
    return "old"


def _tone_srgb(t: float, rng: np.random.Generator) -> list[int]:
    lo, frac = int(np.floor(min(t, 4.999))), t - np.floor(min(t, 4.999))
    srgb = FITZPATRICK_SRGB[lo] * (1 - frac) + FITZPATRICK_SRGB[min(lo + 1, 5)] * frac
    srgb = srgb * np.array([1.0 + rng.uniform(-0.03, 0.04), 1.0, 1.0 + rng.uniform(-0.04, 0.02)])
    return [int(x) for x in np.clip(np.round(srgb), 0, 255)]


def _dye(rng: np.random.Generator, names, keep_p: float, pattern_p: float = 0.0) -> dict:
    """A garment region's colour: the asset's own (keep), dyed to a fabric colour, or a print."""
    r = rng.random()
    if r < keep_p:
        return {
            "mode": "keep",
            "value": round(float(rng.uniform(0.85, 1.15)), 3),
            "hue": round(float(rng.uniform(-0.03, 0.03)), 4),
        }
    fab = _fabric(rng, names)
    out = {"mode": "dye", **fab, "amount": round(float(rng.uniform(0.8, 1.0)), 3)}
    if r > 1.0 - pattern_p:
        pat = _pattern(rng, fab, allow=True)
        while pat["type"] == "solid":
            pat = _pattern(rng, fab, allow=True)
        out["pattern"] = pat
    return out


def sample_makehuman_appearance(rng: np.random.Generator, phenotype: dict, folder) -> dict:
    """Asset choices for a body from a MakeHuman `AssetFolder` (JSON-able; see the module doc)."""
    sex = "female" if phenotype["gender"] > 0.5 else "male"
    years = float(phenotype.get("age_years", 35.0))
    # tone first, uniform over the six types (t = k is type k+1's reference albedo; the end
    # types' outer halves sit at the extreme albedo), then an ancestry whose range holds it
    raw = float(rng.uniform(-0.5, 5.5))
    tone = float(np.clip(raw, 0.0, 5.0))
    fitz = int(np.clip(np.floor(raw + 0.5), 0, 5)) + 1
    fits = [a for a, (lo, hi) in ANCESTRY_TONE.items() if lo <= raw <= hi]
    ancestry = fits[int(rng.integers(len(fits)))]
    age = _age_group(rng, years)
    key = f"{age}_{ancestry}_{sex}"
    if key not in folder.skins:  # a partial folder: the nearest skin of the same ancestry, else any
        same = [k for k, s in folder.skins.items() if s.ancestry == ancestry] or list(folder.skins)
        key = same[int(rng.integers(len(same)))]
    skin = {
        "asset": key,
        "ancestry": ancestry,
        "age_group": age,
        "fitzpatrick": fitz,
        "tone": round(tone, 3),
        "srgb": _tone_srgb(tone, rng),
        "roughness": round(float(rng.uniform(0.42, 0.55)), 3),
    }

    light = tone < 2.5
    eye_light = light and ancestry == "caucasian"  # light irises are rare outside light European skin
    eye_key = _weighted_key(rng, {k: v[0 if eye_light else 1] for k, v in EYE_MATERIALS.items()}, folder.eye_materials)

    style = _weighted_key(rng, MH_HAIR[sex], folder.hair)
    if years > 55 and rng.random() < min(0.9, (years - 45) / 35):
        hair_colour = "grey" if rng.random() < 0.6 else "white"
    else:  # black, dark brown, brown, auburn, blond, light blond, red (grey/white: age only)
        w = MH_HAIR_COLOUR_WEIGHTS["caucasian" if ancestry == "caucasian" and light else "other"]
        hair_colour = _choice(rng, HAIR_COLOURS, w)
    hair_srgb = _jitter(rng, HAIR_COLOURS[hair_colour], 0.05)
    hair = {
        "asset": None if style == "none" else style,
        "colour": hair_colour,
        "srgb": hair_srgb,
        "amount": round(float(rng.uniform(0.85, 1.0)), 3),
        "roughness": round(float(rng.uniform(0.35, 0.5)), 3),
    }
    brow_srgb = (
        [int(round(c * rng.uniform(0.55, 0.8))) for c in hair_srgb]
        if hair_colour not in ("grey", "white")
        else _jitter(rng, (110, 105, 100), 0.05)
    )
    brows = sorted(folder.eyebrows)
    lashes = sorted(folder.eyelashes)
    eyebrows = {"asset": brows[int(rng.integers(len(brows)))], "srgb": brow_srgb}
    eyelashes = {"asset": lashes[int(rng.integers(len(lashes)))], "srgb": _jitter(rng, (18, 14, 12), 0.05)}

    outfit_key = _weighted_key(
        rng,
        {
            **{k: 1.0 for k in folder.outfits if k not in MH_OUTFITS["female"] and k not in MH_OUTFITS["male"]},
            **MH_OUTFITS[sex],
        },
        folder.outfits,
    )
    top = _dye(rng, TOP_DYES, keep_p=0.3, pattern_p=0.2)
    bottom = _dye(rng, BOTTOM_DYES, keep_p=0.4)
    for region in (top, bottom):
        region["roughness"] = round(float(rng.uniform(0.7, 0.95)), 3)
        region["sheen"] = round(float(rng.uniform(0.2, 0.6)), 3)
    shoe_keys = sorted(folder.shoes)
    shoes = {
        "asset": shoe_keys[int(rng.integers(len(shoe_keys)))],
        **_dye(rng, SHOE_COLOURS, keep_p=0.6),
        "roughness": round(float(rng.uniform(0.35, 0.7)), 3),
    }
    return {
        "source": "makehuman",
        "skin": skin,
        "eyes": {"asset": eye_key},
        "hair": hair,
        "eyebrows": eyebrows,
        "eyelashes": eyelashes,
        "outfit": {"asset": outfit_key, "top": top, "bottom": bottom},
        "shoes": shoes,
        "teeth": {"asset": "teeth_base"},
    }
