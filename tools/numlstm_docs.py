"""Helpers for the executed pages of the documentation; not part of numlstm.

The tutorials under ``docs/`` run at build time (markdown-exec). They draw
their figures with matplotlib and hand them to :func:`figure`, which embeds
the picture in the page as a PNG data URI (so the built site needs no extra
files and nothing from the network). :func:`read_results` parses the tables
that the benchmarks wrote to ``benchmarks/results/*.txt``, so that the pages
plot the figures as they were measured instead of copies typed by hand.

``tools/mkdocs_hooks.py`` puts this folder on ``sys.path`` during the build.
"""

import base64
import html
import io
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# The class the build hook counts to check that every figure a page declares was drawn.
FIGURE_CLASS = "numlstm-figure"


def figure(fig, alt, caption=None, dpi=100):
    """HTML for a matplotlib figure, embedded as a PNG; closes the figure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    alt : str
        Text alternative, for screen readers and when images are off.
    caption : str, optional
        Shown under the figure.
    """
    if not alt:
        raise ValueError("alt must describe the figure (it is the text alternative).")
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    caption_html = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (f'<figure class="{FIGURE_CLASS}"><img alt="{html.escape(alt, quote=True)}" '
            f'src="data:image/png;base64,{data}" />{caption_html}</figure>')


class Results:
    """One benchmark's recorded output: its free-text lines and its tables.

    Attributes
    ----------
    path : pathlib.Path
    header : list of str
        The non-empty lines before the first table: what ran where and when.
    lines : list of str
        Every non-empty line that is not part of a table, in order (the
        header lines first).
    tables : list of list of dict
        Each markdown table as rows, a dict from column header to cell text.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.header, self.lines, self.tables = [], [], []
        table = None
        for raw in self.path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if line.startswith("|"):
                cells = [cell.strip() for cell in line.strip("|").split("|")]
                if table is None:
                    table = {"header": cells, "rows": []}
                elif not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                    table["rows"].append(dict(zip(table["header"], cells)))
                continue
            if table is not None:
                self.tables.append(table["rows"])
                table = None
            if line:
                self.lines.append(line)
                if not self.tables:
                    self.header.append(line)
        if table is not None:
            self.tables.append(table["rows"])
        if not self.tables:
            raise ValueError(f"{self.path} has no markdown table; is it a benchmark's output?")

    @property
    def date(self):
        """The run's date, ``YYYY-MM-DD``, from the first timestamp in the header lines."""
        for line in self.lines:
            found = re.search(r"\b(\d{4}-\d{2}-\d{2})T\d{2}:\d{2}", line)
            if found:
                return found.group(1)
        raise ValueError(f"{self.path} records no date (an ISO timestamp in its header lines).")

    def markdown(self, index=0, columns=None):
        """Table ``index`` as markdown, optionally only some ``columns``."""
        rows = self.tables[index]
        columns = columns or list(rows[0])
        out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        out += ["| " + " | ".join(row[c] for c in columns) + " |" for row in rows]
        return "\n".join(out)


def read_results(name):
    """Parse ``benchmarks/results/<name>.txt``; see :class:`Results`."""
    return Results(RESULTS / f"{name}.txt")


def number(text):
    """The first number in a table cell: ``"0.523 (fit/epoch: 1.465)"`` gives 0.523."""
    found = re.search(r"-?\d+(?:,\d{3})*(?:\.\d+)?", text)
    if found is None:
        raise ValueError(f"no number in {text!r}")
    return float(found.group(0).replace(",", ""))


def seconds(text):
    """A duration cell (``"0.858 ms"``, ``"15.4 s"``) in seconds."""
    value = number(text)
    unit = text.split()[-1]
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
    if unit not in scale:
        raise ValueError(f"unknown time unit in {text!r}; expected one of {sorted(scale)}")
    return value * scale[unit]
