"""Both environments exist and import what they must: jax in the main one, bpy in the render one."""

import subprocess

import numpy as np

from thfm_synth import bootstrap
from thfm_synth.blender.runtime import RenderRuntime

from conftest import run_cli


def test_main_environment_has_jax_and_numpy_2():
    import jax
    import jax.numpy as jnp

    assert int(np.__version__.split(".")[0]) >= 2
    assert float(jnp.sum(jnp.arange(4.0))) == 6.0
    assert len(jax.devices()) >= 1


def test_render_environment_imports_bpy_with_numpy_1():
    runtime = RenderRuntime.detect()
    info = runtime.probe()
    assert info["blender_version"].startswith("5.0")
    assert info["numpy"].startswith("1.")
    assert info["python"].startswith("3.11")
    # and it does not see the main environment's packages
    proc = subprocess.run([str(runtime.executable), "-c", "import jax"], capture_output=True)
    assert proc.returncode != 0


def test_doctor_reports_everything_ok():
    proc = run_cli("doctor")
    assert proc.returncode == 0, proc.stdout
    assert "render: blender        5.0.1" in proc.stdout and "main: jax devices      cpu" in proc.stdout
    assert proc.stdout.strip().endswith("0 missing")


def test_doctor_names_a_missing_blender_with_the_fix(tmp_path):
    proc = run_cli("doctor", "--blender", tmp_path / "no-blender")
    assert proc.returncode == 1
    assert "MISSING render: blender" in proc.stdout and "fix: pass --blender" in proc.stdout


def test_launcher_is_idempotent_once_set_up():
    # the stamps match, so ensure_* returns without reinstalling
    assert bootstrap.ensure_main() == bootstrap.venv_python(bootstrap.main_venv())
    assert bootstrap.ensure_render() == bootstrap.venv_python(bootstrap.render_venv())
