"""The numlstm command, run in-process through its entry point."""

import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from numlstm.cli import main


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for key in ("versions", "num_threads", "threading_layer", "cache", "vector_width", "cuda"):
        assert re.search(rf"^{key}\s", out, re.M), key


def test_demo_writes_forecast_plot_and_skill(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["demo", "--epochs", "2", "--horizon", "3", "--quiet", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    persistence = float(re.search(r"^persistence\s+([0-9.]+)", out, re.M).group(1))
    seasonal = float(re.search(r"^seasonal naive\s+([0-9.]+)", out, re.M).group(1))
    model = float(re.search(r"^numlstm \(median\)\s+([0-9.]+)", out, re.M).group(1))
    # Persistence and seasonal-naive MAE over 2015, leads 1-3, are properties of the data alone.
    assert persistence == pytest.approx(2.9593, abs=1e-3)
    assert seasonal == pytest.approx(3.7778, abs=1e-3)
    assert 0 < model < 10
    assert "forecast origins x 3 lead days" in out
    forecast = xr.load_dataset(tmp_path / "forecast.nc", engine="scipy")
    assert forecast["temp_max"].dims == ("time", "quantile")
    assert str(forecast["time"].values[0])[:10] == "2016-01-01"
    assert forecast["temp_max"].attrs["units"] == "degC"
    png = tmp_path / "forecast.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forecast.nc", "forecast.png"]  # no temporaries


@pytest.fixture
def stations_file(tmp_path):
    rng = np.random.default_rng(0)
    times = pd.date_range("2001-01-01", periods=60, freq="D")
    ds = xr.Dataset(
        {"flow": (("time", "station"), rng.gamma(2.0, 1.0, (60, 2)), {"units": "m3 s-1"}),
         "rain": (("time", "station"), rng.gamma(1.0, 1.0, (60, 2)))},
        coords={"time": times, "station": ["a", "b"]},
    )
    path = tmp_path / "stations.nc"
    ds.to_netcdf(path, engine="scipy")
    return path


def test_forecast_command(stations_file, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out_path, plot, model = tmp_path / "out.nc", tmp_path / "out.png", tmp_path / "model.nc"
    before = stations_file.read_bytes()
    code = main(["forecast", str(stations_file), "--target", "flow", "--horizon", "3", "--lookback", "5",
                 "--covariates", "rain", "--epochs", "2", "--quantiles", "0.1", "0.9", "--quiet",
                 "-o", str(out_path), "--plot", str(plot), "--save-model", str(model)])
    assert code == 0
    forecast = xr.load_dataset(out_path, engine="scipy")
    assert forecast["flow"].dims == ("time", "station", "quantile")
    assert [str(t)[:10] for t in forecast["time"].values] == ["2001-03-02", "2001-03-03", "2001-03-04"]
    assert plot.read_bytes()[:4] == b"\x89PNG"
    import numlstm

    again = numlstm.load(model).predict()
    np.testing.assert_allclose(again["flow"].values, forecast["flow"].values, rtol=1e-6)
    assert stations_file.read_bytes() == before
    assert "forecast: " in capsys.readouterr().out


def test_forecast_command_errors(stations_file, tmp_path, capsys):
    out = tmp_path / "out.nc"
    with pytest.raises(SystemExit) as exc:
        main(["forecast", str(stations_file), "--target", "nope", "--horizon", "2", "-o", str(out)])
    assert exc.value.code == 2
    assert "numlstm forecast: error: target 'nope' not found in data" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["forecast", str(stations_file), "--target", "flow", "--horizon", "2", "-o", str(stations_file)])
    assert "is the input file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["forecast", str(stations_file), "--target", "flow", "--horizon", "0", "-o", str(out)])
    assert "--horizon must be >= 1, got 0" in capsys.readouterr().err
    assert not out.exists()


def test_demo_rejects_bad_epochs(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--epochs", "0"])
    assert "--epochs must be >= 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
def test_forecast_command_plots_cftime_calendars(tmp_path, capsys, calendar):
    pytest.importorskip("matplotlib")
    pytest.importorskip("cftime")
    times = xr.date_range("2001-01-01", periods=50, freq="D", calendar=calendar, use_cftime=True)
    rng = np.random.default_rng(1)
    ds = xr.Dataset({"tas": (("time", "cell"), 280 + rng.standard_normal((50, 2)), {"units": "K"})},
                    coords={"time": times, "cell": [0, 1]})
    data, out, plot = tmp_path / "model_output.nc", tmp_path / "out.nc", tmp_path / "out.png"
    ds.to_netcdf(data, engine="scipy")
    code = main(["forecast", str(data), "--target", "tas", "--horizon", "3", "--lookback", "5", "--epochs", "1",
                 "--quiet", "-o", str(out), "--plot", str(plot)])
    assert code == 0, capsys.readouterr().err
    assert plot.read_bytes()[:4] == b"\x89PNG"
    forecast = xr.load_dataset(out, engine="scipy")  # noleap and 360_day decode to cftime
    assert forecast["time"].values[0].calendar == calendar
    assert f"plot: {plot}" in capsys.readouterr().out


def test_a_failure_after_the_forecast_is_written_says_what_was_written(stations_file, tmp_path, capsys,
                                                                       monkeypatch):
    import numlstm.cli

    def broken_plot(*args, **kwargs):
        raise RuntimeError("the plotting library broke")

    monkeypatch.setattr(numlstm.cli, "plot_forecast", broken_plot)
    out, model = tmp_path / "out.nc", tmp_path / "model.nc"
    code = main(["forecast", str(stations_file), "--target", "flow", "--horizon", "2", "--lookback", "5",
                 "--epochs", "1", "--quiet", "-o", str(out), "--save-model", str(model), "--plot",
                 str(tmp_path / "out.png")])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err == (f"numlstm forecast: error after writing the forecast to {out}, the model to {model}: "
                   "RuntimeError: the plotting library broke")
    assert out.exists() and model.exists()


def test_forecast_command_input_and_output_errors(stations_file, tmp_path, capsys):
    out = tmp_path / "out.nc"
    not_netcdf = tmp_path / "notes.nc"
    not_netcdf.write_text("station notes, not a netCDF file\n")
    (tmp_path / "folder.nc").mkdir()
    cases = [
        ([str(tmp_path / "missing.nc"), "--target", "flow"], "input file .*missing.nc' does not exist"),
        ([str(not_netcdf), "--target", "flow"], "input file .*notes.nc' could not be read as netCDF"),
        ([str(stations_file), "--target", "flow", "--covariates", "snow"], "'snow' not found in data"),
        ([str(stations_file), "--target", "flow", "--plot", str(tmp_path / "no" / "p.png")],
         "--plot .*: the folder .*no' does not exist"),
        ([str(stations_file), "--target", "flow", "--save-model", str(tmp_path / "model.txt")],
         "must end in .nc"),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as exc:
            main(["forecast", *args, "--horizon", "2", "--lookback", "5", "--epochs", "1", "--quiet", "-o", str(out)])
        err = capsys.readouterr().err
        assert exc.value.code == 2, args
        assert err.count("\n") == 1 and re.search(message, err), err
    for args, message in [(["-o", str(tmp_path / "nowhere" / "out.nc")], "the folder .*nowhere' does not exist"),
                          (["-o", str(tmp_path / "folder.nc")], "is a folder")]:
        with pytest.raises(SystemExit) as exc:
            main(["forecast", str(stations_file), "--target", "flow", "--horizon", "2", *args])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.count("\n") == 1 and re.search(message, err), err
    assert not out.exists()


def test_ctrl_c_in_the_forecast_command_is_one_line(stations_file, tmp_path, capsys, monkeypatch):
    from numlstm.forecast.forecaster import Forecaster

    def interrupted_fit(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Forecaster, "fit", interrupted_fit)
    out = tmp_path / "out.nc"
    with pytest.raises(SystemExit) as exc:
        main(["forecast", str(stations_file), "--target", "flow", "--horizon", "2", "--quiet", "-o", str(out)])
    assert exc.value.code == 130
    assert capsys.readouterr().err == "numlstm forecast: interrupted\n"
    assert not out.exists()
