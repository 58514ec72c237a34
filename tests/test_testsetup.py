"""The test command's set-up step: it, not a test, installs Chromium, and it says so first."""

from __future__ import annotations

import os
import re
import shutil
import stat

from thfm_synth import testsetup

from conftest import REPO


def _script(path, body: str):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_chromium_is_installed_by_the_announced_set_up_step(tmp_path, monkeypatch, capsys):
    """A stand-in apt-get (it records its calls and 'installs' a chromium script) on an otherwise empty PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    chmod = shutil.which("chmod")
    _script(
        bin_dir / "apt-get",
        f'echo "$@" >> {log}\n'
        f'case "$1" in install) printf "#!/bin/sh\\n" > {bin_dir}/chromium; '
        f"{chmod} +x {bin_dir}/chromium;; esac\n",
    )
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.delenv(testsetup.NO_INSTALL_ENV, raising=False)

    assert testsetup.ensure_chromium(install=False) is None and not log.exists()
    assert "will skip" in capsys.readouterr().err
    monkeypatch.setenv(testsetup.NO_INSTALL_ENV, "1")
    assert testsetup.ensure_chromium() is None and not log.exists()
    monkeypatch.delenv(testsetup.NO_INSTALL_ENV)

    assert testsetup.ensure_chromium() == str(bin_dir / "chromium")
    err = capsys.readouterr().err
    announced, done = err.index("installing Debian's chromium"), err.index("installed chromium in")
    assert announced < done and "[thfm-synth test]" in err
    assert log.read_text().splitlines() == ["update -qq", "install -y -qq --no-install-recommends chromium"]
    # found now: nothing runs again
    assert testsetup.ensure_chromium() == str(bin_dir / "chromium") and len(log.read_text().splitlines()) == 2


def test_a_failed_install_says_why_and_the_browser_test_skips(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir / "apt-get", 'echo "E: Unable to locate package chromium" >&2; exit 100\n')
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.delenv(testsetup.NO_INSTALL_ENV, raising=False)
    assert testsetup.ensure_chromium() is None
    assert (
        "exit 100: E: Unable to locate package chromium); the HTML card's browser test will skip"
        in capsys.readouterr().err
    )


def test_no_test_installs_system_packages():
    offenders = [
        p.name
        for p in (REPO / "tests").glob("*.py")
        if p.name != "test_testsetup.py"
        and re.search(r"""["'](apt-get|apt|dnf|yum|apk)["'],\s*["'](install|update)""", p.read_text())
    ]
    assert offenders == []
