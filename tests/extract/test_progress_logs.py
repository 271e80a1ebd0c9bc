"""Progress bars stay out of logs: with stdout and stderr piped (no terminal), `python -m extract` and
`python -m eri_jax.train` draw no bar, theirs or TFDS's, and still print their summary lines."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# What a tqdm bar leaves in a file: carriage returns, cursor-up escapes, block glyphs, "NN%|".
BAR = re.compile(r"\r|\x1b\[|[\u2588\u2589\u258a\u258b\u258c\u258d\u258e\u258f]|\d%\|")


def _piped(tmp_path: Path, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.fspath(REPO), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-m", *args], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for stream in (proc.stdout, proc.stderr):
        bar = BAR.search(stream)
        assert bar is None, f"progress bar in a piped run of {args[0]}: {stream[max(0, bar.start() - 200):][:400]!r}"
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_piped_extract_and_train_print_summaries_not_bars(tmp_path):
    data = os.fspath(tmp_path / "tfds")
    # Progress is not turned off: the bars are off because nobody watches a terminal.
    out = _piped(tmp_path, "extract", "--cache-dir", os.fspath(tmp_path / "cache"), "--data-dir", data,
                 "--synthetic-clips", "1")
    assert re.search(r"^  pixels +done 3, cached 0, missing 0, failed 0", out, re.M)
    assert "TFDS:   hume_reaction/demo in " in out
    assert ".building-" not in out  # the dataset is named where it lives, not where it was built
    out = _piped(tmp_path, "eri_jax.train", "--model", "lstm", "--features", "fau", "--data-dir", data,
                 "--epochs", "2", "--workdir", "ck", "--runs-dir", "runs")
    assert re.search(r"^best epoch \d/2: dev mean Pearson ", out, re.M)
