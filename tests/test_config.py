import pytest

from thfm_synth.config import PRESETS, config_digest, load_config
from thfm_synth.errors import ConfigError, UserError


def test_paper_preset_matches_the_paper():
    cfg = load_config("paper")
    assert (cfg.video.width, cfg.video.height, cfg.video.num_frames, cfg.video.fps) == (832, 480, 81, 24.0)
    assert cfg.num_videos == 20000
    assert cfg.background.kind_weights["hdri"] > 0 and cfg.background.kind_weights["scene"] > 0
    assert cfg.camera.focal_length_mm[0] < cfg.camera.focal_length_mm[1]


def test_preview_preset_is_tiny():
    cfg = load_config("preview")
    assert cfg.video.width * cfg.video.height <= 256 * 160 and cfg.video.num_frames <= 9
    assert set(PRESETS) >= {"paper", "preview"}


@pytest.mark.parametrize(
    "override, field, hint",
    [
        ({"video": {"width": 50}}, "video.width", ">= 64"),
        ({"video": {"num_frames": 80}}, "video.num_frames", "4k+1"),
        ({"camera": {"focal_length_mm": [-3, 85]}}, "camera.focal_length_mm", "[8, 300] mm"),
        ({"camera": {"focal_length_mm": [85, 24]}}, "camera.focal_length_mm", "greater than max"),
        ({"lighting": {"extra_lights": [0, 20]}}, "lighting", "<= 8"),
        ({"num_videos": -1}, "num_videos", ">= 1"),
        ({"background": {"kind_weights": {"hdri": 0, "scene": 0, "sky": 0}}}, "background.kind_weights", "> 0"),
        ({"camera": {"trajectory_weights": {"zoom": 1}}}, "camera.trajectory_weights", "allowed"),
    ],
)
def test_invalid_values_name_the_field_and_the_allowed_range(override, field, hint):
    with pytest.raises(ConfigError) as err:
        load_config("paper", overrides=override)
    msg = err.value.one_line()
    assert "\n" not in msg
    assert field in msg and hint in msg
    assert err.value.exit_code == 2


def test_unknown_field_and_unknown_preset():
    with pytest.raises(ConfigError, match="unknown field camera.zoom"):
        load_config("paper", overrides={"camera": {"zoom": 2}})
    with pytest.raises(ConfigError, match="unknown preset 'nope'.*paper"):
        load_config("nope")


def test_config_file_overrides_its_preset_and_resolves_manifest_paths(tmp_path):
    (tmp_path / "lib.yaml").write_text("name: x\n")
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text("preset: preview\nnum_videos: 7\nvideo: {width: 320}\nassets: {manifests: [lib.yaml]}\n")
    cfg = load_config(config_file=cfg_file)
    assert cfg.num_videos == 7 and cfg.video.width == 320 and cfg.video.height == 160  # rest from preview
    assert cfg.assets.manifests == (str((tmp_path / "lib.yaml").resolve()),)
    assert config_digest(cfg) != config_digest(load_config("preview"))
    assert config_digest(cfg) == config_digest(load_config(config_file=cfg_file))


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("video: {width: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(config_file=bad)
    with pytest.raises(UserError, match="not found"):
        load_config(config_file=tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "override, field",
    [
        ({"num_videos": True}, "num_videos"),  # was accepted as 1
        ({"num_videos": "5"}, "num_videos"),
        ({"video": {"width": 128.0}}, "video.width"),
        ({"render": {"denoise": 1}}, "render.denoise"),
        ({"camera": {"focal_length_mm": [True, 50]}}, "camera.focal_length_mm"),
        ({"qa": {"visible_frames_min": "high"}}, "qa.visible_frames_min"),
    ],
)
def test_values_of_the_wrong_type_are_refused_not_coerced(override, field):
    with pytest.raises(ConfigError) as err:
        load_config("paper", overrides=override)
    assert field in err.value.one_line() and "\n" not in err.value.one_line()
    assert load_config("paper", overrides={"video": {"fps": 30}}).video.fps == 30.0  # an int for a float: fine


def test_an_unknown_field_suggests_the_nearest_and_says_how_to_fix_it():
    with pytest.raises(ConfigError) as err:
        load_config("paper", overrides={"num_video": 5})
    line = err.value.one_line()
    assert "unknown field num_video (did you mean num_videos?)" in line
    assert "allowed range" not in line and "remove or rename the field" in line
    with pytest.raises(
        ConfigError,
        match=r"unknown field camera.focal_lenght_mm \(did you mean "
        r"camera.focal_length_mm\?\)",
    ):
        load_config("paper", overrides={"camera": {"focal_lenght_mm": [20, 30]}})


def test_qa_thresholds_are_configurable_and_documented():
    from thfm_synth.config.schema import QaSettings

    cfg = load_config("paper", overrides={"qa": {"visible_frames_min": 0.5, "joint_height_m": [-1, 4]}})
    assert cfg.qa.visible_frames_min == 0.5 and cfg.qa.joint_height_m == (-1.0, 4.0)
    assert all(f.description for f in QaSettings.model_fields.values())
    with pytest.raises(ConfigError, match="qa.visible_frames_min"):
        load_config("paper", overrides={"qa": {"visible_frames_min": 2}})
