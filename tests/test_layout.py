"""The forecasting code split by job: one home per job, none of them a
module of more than about 600 lines (the skill issue's sixth ask; the import
floors and the absence of cycles are lint-imports' job, in .ci/run)."""

from pathlib import Path

import numlstm.forecast

ABOUT_600 = 650


def test_no_forecasting_module_is_over_about_600_lines():
    folder = Path(numlstm.forecast.__file__).parent
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in folder.glob("*.py")}
    assert {"forecaster.py", "timeaxis.py", "frequency.py", "cycles.py", "skill.py"} <= set(sizes)
    over = {name: n for name, n in sizes.items() if n > ABOUT_600}
    assert not over, f"forecast modules over {ABOUT_600} lines: {over}; split them by job (docs/contributing.md)"
