"""The numlstm command, run in-process through its entry point."""

import re

import pytest

from numlstm.cli import main


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for key in ("versions", "num_threads", "threading_layer", "cache", "cuda"):
        assert re.search(rf"^{key}\s", out, re.M), key


def test_demo_writes_plot_and_compares_with_persistence(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["demo", "--epochs", "2", "--quiet", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lstm = float(re.search(r"test RMSE, LSTM:\s+([0-9.]+)", out).group(1))
    persistence = float(re.search(r"test RMSE, persistence:\s+([0-9.]+)", out).group(1))
    assert lstm > 0 and persistence == pytest.approx(0.7008, abs=1e-4)
    png = tmp_path / "population_forecast.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["population_forecast.png"]  # no temporary left behind


def test_demo_rejects_bad_epochs(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--epochs", "0"])
    assert "--epochs must be >= 1, got 0" in capsys.readouterr().err
