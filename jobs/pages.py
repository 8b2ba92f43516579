"""HTML pages from the Jinja2 templates in jobs/templates/: the run report and the `inkpaint eval --shots` page.

The templates are package data (pyproject.toml), found through the installed package, and rendered with autoescape
on: every value a page shows (shot names, paths, messages from a run or a studio's folder) is HTML-escaped.
"""

from __future__ import annotations

import jinja2

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("jobs", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,  # a value the page names but was not given is an error, not a blank
)


def render_page(template: str, **values: object) -> str:
    """The page of jobs/templates/`template` with `values`."""
    return _TEMPLATES.get_template(template).render(**values)
