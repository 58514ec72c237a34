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


PIP_OUTPUT = """\
Obtaining file:///src/thfm-synth
  Installing build dependencies: started
Collecting numpy>=2.0
  Downloading numpy-2.3.1-cp311-cp311-manylinux_2_28_x86_64.whl.metadata (62 kB)
  Downloading numpy-2.3.1-cp311-cp311-manylinux_2_28_x86_64.whl (16.9 MB)
Collecting torch==2.13.0
  Downloading https://download.pytorch.org/whl/cpu/torch-2.13.0%2Bcpu-cp311-cp311-linux_x86_64.whl (190.3 MB)
Collecting jax>=0.7
  Using cached jax-0.7.2-py3-none-any.whl (2,801.5 kB)
Requirement already satisfied: six in /venv/lib/python3.11/site-packages
Building wheels for collected packages: thfm-synth
Installing collected packages: six, numpy, torch, jax, thfm-synth
Successfully installed jax-0.7.2 numpy-2.3.1 thfm-synth-0.1.0 torch-2.13.0
"""


def test_setup_shows_what_pip_installs_and_how_far_it_is():
    """A few lines per environment with the elapsed time, whatever pip prints; a live line on a terminal."""
    import io

    expected = [
        "[thfm-synth setup] the main environment: resolving and downloading packages (0 s)",
        "[thfm-synth setup]   downloading torch-2.13.0%2Bcpu-cp311-cp311-linux_x86_64.whl (190.3 MB) (42 s)",
        "[thfm-synth setup] the main environment: building packages from source (1 min 10 s)",
        "[thfm-synth setup] the main environment: installing 5 packages (207 MB downloaded) (1 min 17 s)",
        "[thfm-synth setup] the main environment: installed 4 packages (1 min 24 s)",
    ]
    for live in (False, True):
        out, now = io.StringIO(), [0.0]
        progress = bootstrap.PipProgress("the main environment", out=out, live=live, clock=lambda: now[0])
        for i, line in enumerate(PIP_OUTPUT.splitlines(keepends=True)):
            now[0] = 7.0 * i  # pip prints line i at 7 i seconds
            progress.feed(line)
        progress.close()
        text = out.getvalue()
        shown = [line.split("\r")[-1] for line in text.split("\n")]  # what a terminal keeps of each line
        assert [line for line in shown if line.strip()] == expected
        assert ("\r[thfm-synth setup]   5 packages, 207 MB downloaded: six (1 min 03 s)" in text) == live
