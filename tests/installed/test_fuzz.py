"""The seeded fuzz run (fuzz_driver.py) in a child process: zero crashes, zero unexpected exceptions,
zero wrong results from a damaged cache. The seed and size are fixed, so a failure reproduces with
the command printed in the assertion; PROTEUS_FUZZ_CASES runs more (the closing figures used 6,000)."""

import json
import os
import subprocess
import sys
from pathlib import Path

DRIVER = Path(__file__).with_name("fuzz_driver.py")


def test_seeded_fuzz_run(tmp_path):
    cases = os.environ.get("PROTEUS_FUZZ_CASES", "800")
    progress = tmp_path / "progress.json"
    command = [sys.executable, str(DRIVER), "--seed", "20261125", "--cases", cases, "--cache", str(tmp_path / "cache"),
               "--progress", str(progress)]
    res = subprocess.run(command, capture_output=True, text=True, timeout=1500)
    last = progress.read_text() if progress.exists() else "(none)"
    assert res.returncode == 0, f"the fuzz child died ({res.returncode}) on {last}\n{res.stderr[-3000:]}"
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    print(json.dumps(summary, indent=1))
    assert summary["inputs"] == int(cases)
    assert summary["unexpected"] == [], summary["unexpected"]
    assert summary["crashes"] == [] and summary["wrong_results"] == 0, summary
    assert summary["cache_rounds"] > 0 and summary["damaged_files"] > 0
