"""`python3 -m thfm_synth ...`: the one command that installs what it needs and runs.

Outside the main environment it sets up both environments (idempotent) and re-runs
itself inside; inside it is simply the `thfm-synth` CLI.
"""

import os
import sys

from thfm_synth import bootstrap

if __name__ == "__main__":
    if bootstrap.inside_main_venv() or os.environ.get("THFM_NO_BOOTSTRAP") == "1":
        from thfm_synth.cli import main

        sys.exit(main(sys.argv[1:]))
    bootstrap.launch(sys.argv[1:])
