"""The quality audit's counting rules (the audit itself runs real models: see its script).

Run in a subprocess from the repository root, as the benchmarks are: inside pytest the
name ``benchmarks`` is this test package.
"""

from __future__ import annotations

import subprocess
import sys

from tests.benchmarks.helpers import ROOT

CHECKS = '''
from benchmarks.quality_audit import VariantResult, meta_words, summarize, win_rate

LOOP = "\\n".join(["Your answer is a piece of yourself."] * 8)

# meta talk: scaffolding words the query does not contain itself
assert meta_words("Here is the improved answer: dust it.", "How do I dust?") == [
    "improved answer"
]
assert meta_words("The chosen color is red.", "Which color is chosen most?") == []
assert meta_words("Dust it weekly with a soft cloth.", "How do I dust?") == []

# ties count half, a missing score loses
assert win_rate([2.0, 1.0, 1.0, None], [1.0, 1.0, 2.0, 0.0]) == (1 + 0.5 + 0 + 0) / 4

queries = ["How do I dust?", "Why is the sky blue?"]
tpo = VariantResult(
    finals=[LOOP, "Here is the improved answer: scattering."], scores=[3.0, 2.0],
    gains=[0.5, 0.0], outputs=12, loops=3,
)
bon = VariantResult(finals=["Dust it.", "Scattering."], scores=[2.0, 2.0])
table = summarize({"tpo": tpo, "bon": bon}, queries)
assert table["tpo"]["loops"] == 0.5 and table["tpo"]["meta_talk"] == 0.5, table
assert table["tpo"]["output_loops"] == 0.25 and table["tpo"]["mean_gain"] == 0.25, table
assert table["tpo"]["win_vs_bon"] == 0.75 and "win_vs_bon" not in table["bon"], table
assert table["bon"]["loops"] == 0.0 and table["bon"]["delimited"]["tagged"] is None, table
print("ok")
'''


def test_loops_meta_talk_gains_and_wins_are_counted_as_documented() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHECKS], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]
