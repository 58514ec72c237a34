"""The built-in asset library, generated: `assets_manifest/builtin.yaml` is this module's output.

Everything here is produced at run time from `params` (no files): procedural skies,
procedural rooms and a street, parametric `anny` bodies and procedural motions. A test
checks that the committed YAML equals `builtin_manifest()`, so the two never drift;
regenerate with `python -m thfm_synth.assets.builtin`.
"""

from __future__ import annotations

from pathlib import Path

from thfm_synth.assets.manifest import Manifest, builtin_sha256, dump_manifest

SOURCE = "thfm-synth built-in (generated at run time from params)"
NUM_BODIES = 16
SKIES = (
    ("sky-clear", {"sky_type": "HOSEK_WILKIE", "turbidity": 2.2, "ground_albedo": 0.3, "ground": "grass"}),
    ("sky-hazy", {"sky_type": "HOSEK_WILKIE", "turbidity": 5.5, "ground_albedo": 0.3, "ground": "asphalt"}),
    ("sky-dusty", {"sky_type": "HOSEK_WILKIE", "turbidity": 8.0, "ground_albedo": 0.4, "ground": "sand"}),
    ("sky-preetham-soft", {"sky_type": "PREETHAM", "turbidity": 3.0, "ground_albedo": 0.3, "ground": "tiles"}),
    (
        "sky-scatter-clean",
        {
            "sky_type": "MULTIPLE_SCATTERING",
            "air_density": 1.0,
            "aerosol_density": 1.0,
            "ozone_density": 1.0,
            "ground": "concrete",
        },
    ),
    (
        "sky-scatter-smog",
        {
            "sky_type": "MULTIPLE_SCATTERING",
            "air_density": 1.5,
            "aerosol_density": 5.0,
            "ozone_density": 1.0,
            "ground": "checker",
        },
    ),
)
SCENES = (
    ("room-living", {"generator": "room", "size_m": [6.0, 5.0, 2.7], "furniture": 5, "style": "living"}, "room"),
    ("room-office", {"generator": "room", "size_m": [7.0, 6.0, 3.0], "furniture": 6, "style": "office"}, "room"),
    ("room-studio", {"generator": "room", "size_m": [8.0, 8.0, 3.5], "furniture": 2, "style": "studio"}, "room"),
    ("street-block", {"generator": "street", "length_m": 40.0, "buildings": 8, "style": "town"}, "street"),
)
MOTION_TAGS = {"walk": ["walk"], "run": ["run"], "turn": ["turn", "walk"], "reach": ["reach"], "squat": ["squat"]}


def _entry(kind: str, entry_id: str, params: dict, **fields) -> dict:
    return dict(
        id=entry_id,
        path=None,
        sha256=builtin_sha256(kind, entry_id, params),
        licence="CC0-1.0",
        source=SOURCE,
        params=params,
        **fields,
    )


def builtin_manifest() -> Manifest:
    from thfm_synth.assets.motion.builtin_motions import builtin_motion
    from thfm_synth.assets.motion.window import activity_profile

    motions = []
    for kind, tags in MOTION_TAGS.items():
        clip = builtin_motion(f"builtin-{kind}")
        motions.append(
            _entry(
                "motions",
                f"builtin-{kind}",
                {"generator": "procedural", "motion": kind},
                format="builtin",
                fps=clip.fps,
                num_frames=int(clip.local_rotations.shape[0]),
                skeleton="cmu_mb",
                tags=tags,
                activity=[round(a, 4) for a in activity_profile(clip)],
            )
        )
    return Manifest.model_validate(
        dict(
            schema_version=1,
            name="builtin",
            description="The built-in library: needs no files, so the pipeline runs offline with no assets at all.",
            characters=[
                _entry(
                    "characters",
                    f"anny-builtin-{i:02d}",
                    {"generator": "anny", "seed": i, "age_range": "adult"},
                    format="anny",
                    rig="cmu_mb",
                )
                for i in range(NUM_BODIES)
            ],
            motions=motions,
            scenes=[_entry("scenes", i, p, format="procedural", scene_type=t) for i, p, t in SCENES],
            skies=[_entry("skies", i, p) for i, p in SKIES],
        )
    )


def smplx_characters(model_dir: str | Path, gender: str = "mixed", texture_dir: str | None = None) -> list:
    """The built-in bodies as SMPL-X bodies (config `character.backend: smplx`): NUM_BODIES entries
    `smplx-builtin-NN`, baked on first use from the user's model folder (`path`)."""
    from thfm_synth.assets.manifest import CharacterEntry
    from thfm_synth.assets.characters.smplx_model import LICENCE, LICENCE_TEXT

    out = []
    for i in range(NUM_BODIES):
        params = {
            "generator": "smplx",
            "seed": i,
            "index": 0,
            "gender": gender,
            "texture_dir": None if texture_dir is None else str(Path(texture_dir).resolve()),
        }
        out.append(
            CharacterEntry(
                id=f"smplx-builtin-{i:02d}",
                path=str(Path(model_dir).expanduser().resolve()),
                sha256=builtin_sha256("characters", f"smplx-builtin-{i:02d}", params),
                licence=LICENCE,
                source=f"SMPL-X body generated from the user's model files; licence: {LICENCE_TEXT}",
                params=params,
                format="smplx",
                rig="smplx",
            )
        )
    return out


HEADER = (
    "# The built-in asset library. Generated by `python -m thfm_synth.assets.builtin`: do not edit.\n"
    "# Schema: assets_manifest/README.md. Each sha256 is the digest of the canonical JSON of {kind, id, params}.\n"
)


def builtin_yaml() -> str:
    return HEADER + dump_manifest(builtin_manifest())


if __name__ == "__main__":
    from thfm_synth.assets.library import BUILTIN_MANIFEST
    from thfm_synth.atomic import write_text

    write_text(BUILTIN_MANIFEST, builtin_yaml(), "built-in manifest")
    print(f"wrote {BUILTIN_MANIFEST}")
