"""Daylight under the analytic skies: a sun lamp with the sky's sun, the sky scaled to its diffuse share."""

import dataclasses
import json
import textwrap

import numpy as np
import pytest

from thfm_synth.assets.library import load_library
from thfm_synth.config import load_config
from thfm_synth.plan.planner import make_plan
from thfm_synth.render.scene import daylight as D
from thfm_synth.render.scene.assemble import assemble


def test_table_interpolation_and_the_sun_to_sky_balance():
    for model, table in D.SKY_IRRADIANCE.items():
        for t, row in table.items():
            for el, e in zip(D.ELEVATIONS_DEG, row):
                assert D.sky_irradiance(model, t, el) == pytest.approx(e)
    assert D.sky_irradiance("HOSEK_WILKIE", 2.2, 27.5) == pytest.approx((0.3479 + 0.5258) / 2)
    assert D.sky_irradiance("HOSEK_WILKIE", 1.0, 90.0) == pytest.approx(0.7506)  # clamped to the table
    assert D.dni_over_dhi(2.2) == pytest.approx(6.9, abs=0.1) and D.dni_over_dhi(8.0) == pytest.approx(1.44, abs=0.05)
    for model, t, el, k in (
        ("HOSEK_WILKIE", 2.2, 35.0, 1.0),
        ("PREETHAM", 3.0, 12.0, 0.6),
        ("HOSEK_WILKIE", 8.0, 60, 1.4),
    ):
        sky, sun = D.daylight(model, t, el, k)
        assert sun == pytest.approx(D.SUN_IRRADIANCE * k)
        # the scaled sky's irradiance is the diffuse share of that turbidity's daylight
        assert sky * D.sky_irradiance(model, t, el) * D.dni_over_dhi(t) == pytest.approx(sun)
    assert D.daylight("MULTIPLE_SCATTERING", 2.2, 35.0, 1.0) is None  # Nishita brings its own sun
    assert D.daylight("HOSEK_WILKIE", 2.2, -2.0, 1.0) is None
    np.testing.assert_allclose(D.sun_direction(90.0, 30.0), [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(D.sun_direction(0.0, 90.0), [0, 1, 0], atol=1e-12)
    assert D.sun_temperature_k(2.0) < D.sun_temperature_k(40.0) == 5500.0


@pytest.fixture(scope="module")
def planned(character_cache):
    cfg = load_config("preview", overrides={"video": {"width": 128, "height": 80, "num_frames": 1}})
    library = load_library()
    spec = next(s for s in make_plan(cfg, library, 3, 40) if s.background_kind == "sky")
    return cfg, library, spec, character_cache


@pytest.mark.parametrize(
    "background,sun",
    [("sky-clear", True), ("sky-preetham-soft", True), ("sky-scatter-clean", False), ("street-block", True)],
)
def test_outdoor_scenes_get_the_skys_sun_and_rooms_do_not(planned, background, sun):
    cfg, library, spec, cache = planned
    kind = "scene" if background.startswith(("street", "room")) else "sky"
    spec = dataclasses.replace(spec, background_id=background, background_kind=kind)
    desc = assemble(spec, library, cfg.render, cache).description
    suns = [light for light in desc.lights if light.kind == "sun"]
    assert len(suns) == (1 if sun else 0)
    assert len(desc.lights) == len(spec.lights) + len(suns)  # the plan's lamps stay
    if sun:
        w = desc.world
        d = np.subtract(suns[0].position, suns[0].target)
        np.testing.assert_allclose(d / np.linalg.norm(d), D.sun_direction(w.sun_elevation_deg, w.sun_azimuth_deg))
        sky, power = D.daylight(w.sky_model, w.turbidity, w.sun_elevation_deg, spec.background_strength)
        assert suns[0].power_w == pytest.approx(power) and w.strength == pytest.approx(sky)
    room = dataclasses.replace(spec, background_id="room-living", background_kind="scene")
    assert not [light for light in assemble(room, library, cfg.render, cache).description.lights if light.kind == "sun"]


MEASURE = textwrap.dedent("""
    import bpy, json, math, sys
    import numpy as np
    out, cases = sys.argv[sys.argv.index("--") + 1], json.loads(sys.argv[sys.argv.index("--") + 2])
    res = []
    for model, turb, el in cases:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        sc = bpy.context.scene
        sc.render.engine = "CYCLES"
        sc.cycles.samples = 128
        sc.cycles.use_denoising = False
        sc.render.resolution_x = sc.render.resolution_y = 8
        sc.view_settings.view_transform = "Standard"
        w = bpy.data.worlds.new("w")
        sc.world = w
        w.use_nodes = True
        sky = w.node_tree.nodes.new("ShaderNodeTexSky")
        sky.sky_type = model
        sky.turbidity = turb
        sky.sun_direction = (0.0, math.cos(math.radians(el)), math.sin(math.radians(el)))
        w.node_tree.links.new(sky.outputs["Color"], w.node_tree.nodes["Background"].inputs["Color"])
        bpy.ops.mesh.primitive_plane_add(size=2)
        m = bpy.data.materials.new("white")
        b = m.node_tree.nodes["Principled BSDF"]
        b.inputs["Base Color"].default_value = (1, 1, 1, 1)
        b.inputs["Specular IOR Level"].default_value = 0.0
        bpy.context.object.data.materials.append(m)
        cam = bpy.data.objects.new("c", bpy.data.cameras.new("c"))
        cam.data.type = "ORTHO"
        cam.data.ortho_scale = 0.5
        cam.location = (0, 0, 0.001)
        sc.collection.objects.link(cam)
        sc.camera = cam
        sc.render.image_settings.file_format = "OPEN_EXR"
        sc.render.filepath = out + "/plane.exr"
        bpy.ops.render.render(write_still=True)
        px = np.array(bpy.data.images.load(out + "/plane.exr").pixels[:]).reshape(-1, 4)[:, :3].mean(0)
        res.append(math.pi * float(px @ [0.2126, 0.7152, 0.0722]))
    print("E=" + json.dumps(res), flush=True)
""")


@pytest.mark.render
def test_the_measured_sky_irradiance_holds_for_this_blender(tmp_path):
    """SKY_IRRADIANCE is a measurement of Blender's sky textures: re-measure a few entries so a
    Blender whose skies changed brightness fails here instead of mis-balancing sun and sky."""
    from thfm_synth.blender.runtime import RenderRuntime

    cases = [("HOSEK_WILKIE", 2.2, 35.0), ("HOSEK_WILKIE", 8.0, 10.0), ("PREETHAM", 3.0, 20.0)]
    script = tmp_path / "measure.py"
    script.write_text(MEASURE)
    proc = RenderRuntime.detect().run_file(script, [str(tmp_path), json.dumps(cases)], timeout=300)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("E=")), None)
    assert line, proc.stderr[-2000:]
    for (model, t, el), e in zip(cases, json.loads(line[2:])):
        assert e == pytest.approx(D.sky_irradiance(model, t, el), rel=0.05), (model, t, el, e)
