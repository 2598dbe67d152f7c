"""MkDocs hooks for numlstm's documentation build (see ``hooks:`` in mkdocs.yml).

The tutorials are executed while the site is built (markdown-exec): a code
block that raises is reported by markdown-exec as a warning, which
``mkdocs build --strict`` turns into a failed build. These hooks add two
checks of their own, also reported as warnings:

- a page with executed code declares how many figures it draws
  (``figures: N`` in its front matter), and the page must come out with
  exactly that many; so a figure that is not drawn fails the build too;
- a Python warning raised while a page is rendered (e.g. a
  ``FutureWarning`` from a tutorial's code) is reported, as the test suite
  treats warnings as errors.
"""

import logging
import sys
import warnings
from pathlib import Path

TOOLS = Path(__file__).resolve().parent

log = logging.getLogger("mkdocs.hooks.numlstm")

_capture = {}


def on_config(config):
    # The executed pages import numlstm_docs (figures, benchmark results) from here.
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    return config


def on_page_markdown(markdown, page, config, files):
    catcher = warnings.catch_warnings(record=True)
    _capture[page.file.src_uri] = (catcher, catcher.__enter__())
    warnings.simplefilter("always")
    return markdown


def on_page_content(html, page, config, files):
    catcher, caught = _capture.pop(page.file.src_uri)
    catcher.__exit__(None, None, None)
    name = page.file.src_uri
    for w in caught:
        log.warning("%s: %s raised while rendering: %s (%s:%s)", name, w.category.__name__, w.message,
                    w.filename, w.lineno)

    from numlstm_docs import FIGURE_CLASS

    drawn = html.count(f'class="{FIGURE_CLASS}"')
    executed = 'exec="on"' in page.markdown or "exec=\"1\"" in page.markdown
    declared = page.meta.get("figures")
    if declared is None:
        if executed or drawn:
            log.warning("%s runs code at build time but does not declare its figures: add 'figures: %d' to "
                        "its front matter.", name, drawn)
    elif not isinstance(declared, int) or isinstance(declared, bool):
        log.warning("%s: front matter 'figures' must be an integer, got %r.", name, declared)
    elif drawn != declared:
        log.warning("%s declares %d figure(s) but %d were drawn: a figure is missing or a block that draws "
                    "one failed.", name, declared, drawn)
    return html
