"""Run steps against a small tmpfs, inside a user + mount namespace (no root needed):
`unshare -rm python tests/small_disk.py SPEC_JSON` mounts a tmpfs of SPEC["size"] at SPEC["mount"],
runs SPEC["steps"] in order and prints one JSON list of their results (the tmpfs ends with the
namespace, so the test reads everything it checks from here). Steps:

  {"run": [argv...], "env": {...}}  -> {"rc", "stdout", "stderr"}
  {"rm": path}                      -> {} (what "freeing space" is)
  {"files": path}                   -> {"files": {relative path: size}} (every file below path)
  {"rows": parquet}                 -> {"rows": [...]} ([] when absent)
  {"read": path}                    -> {"text": the file's text ("" when absent)}
"""

import json
import os
import subprocess
import sys
from pathlib import Path

if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={spec['size']}", "none", spec["mount"]], check=True)
    results = []
    for step in spec["steps"]:
        if "run" in step:
            p = subprocess.run(step["run"], capture_output=True, text=True, env={**os.environ, **step.get("env", {})})
            results.append({"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr})
        elif "rm" in step:
            Path(step["rm"]).unlink()
            results.append({})
        elif "files" in step:
            root = Path(step["files"])
            files = {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}
            results.append({"files": files})
        elif "rows" in step:
            import pyarrow.parquet as pq

            path = Path(step["rows"])
            rows = pq.read_table(path).to_pylist() if path.is_file() else []
            results.append({"rows": json.loads(json.dumps(rows, default=str))})
        elif "read" in step:
            path = Path(step["read"])
            results.append({"text": path.read_text(errors="replace") if path.is_file() else ""})
    print(json.dumps(results))
