"""The announced set-up step of `thfm-synth test`, run before pytest starts.

It says where the test assets are (or that the tests needing them will skip, and the command that
fetches them), and makes sure the HTML card's browser test has a Chromium: when none is installed,
the process runs as root and apt-get exists, it installs Debian's `chromium` package, saying so
first (`--no-install` or THFM_TEST_NO_INSTALL=1 turns that off; the browser test then skips, naming
this step). No test installs anything itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
NO_INSTALL_ENV = "THFM_TEST_NO_INSTALL"
CHROMIUM_STEP = (
    "`python3 -m thfm_synth test` installs Debian's chromium for it when run as root "
    "(or install Chromium yourself: `apt-get install chromium`)"
)


def say(msg: str) -> None:
    print(f"[thfm-synth test] {msg}", file=sys.stderr, flush=True)


def find_chromium() -> str | None:
    """A Chromium (or Chrome) binary on PATH."""
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def may_install_system_packages() -> bool:
    return (
        os.environ.get(NO_INSTALL_ENV) != "1"
        and shutil.which("apt-get") is not None
        and hasattr(os, "geteuid")
        and os.geteuid() == 0
    )


def ensure_chromium(install: bool = True) -> str | None:
    """The Chromium binary, installing Debian's package when missing and permitted (announced, timed)."""
    if path := find_chromium():
        return path
    if not (install and may_install_system_packages()):
        say(
            "Chromium not found: the HTML card's browser test will skip (fix: `apt-get install chromium`, or "
            "run this command as root without --no-install to have it installed)"
        )
        return None
    say(
        "Chromium not found: installing Debian's chromium for the HTML card's browser test "
        f"(apt-get update; apt-get install -y chromium; a minute or two, once; --no-install or {NO_INSTALL_ENV}=1 "
        "skips this)"
    )
    t0 = time.perf_counter()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
    ):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            say(f"`{' '.join(cmd)}` failed ({exc}); the HTML card's browser test will skip")
            return None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
            say(f"`{' '.join(cmd)}` failed (exit {proc.returncode}: {tail[0]}); the HTML card's browser test will skip")
            return None
    path = find_chromium()
    say(
        f"installed chromium in {time.perf_counter() - t0:.0f} s: {path}"
        if path
        else "apt-get installed chromium but no binary is on PATH; the HTML card's browser test will skip"
    )
    return path


def announce_assets() -> None:
    from thfm_synth.assets import testassets

    found = testassets.find_test_assets()
    if found is None:
        say(f"the tests that read the test assets will skip: {testassets.missing_reason()}")
        return
    missing = testassets.check_layout(found)
    detail = f"{len(missing)} listed files missing (fix: `{testassets.FETCH_COMMAND}`)" if missing else "complete"
    say(f"test assets: {found} ({detail})")


def prepare(install: bool = True, quick: bool = False) -> None:
    """Everything `thfm-synth test` does before pytest: announce, and install what the suite needs."""
    say(
        "the quick subset (--quick) skips the tests marked slow"
        if quick
        else "the full suite (what CI runs) takes about 32 min on 2 idle cores; --quick skips the slow tests"
    )
    announce_assets()
    ensure_chromium(install)
