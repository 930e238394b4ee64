"""Sphinx configuration of the docs site.

`tools/build_docs.py` (`make docs`) fills a scratch source directory with pages converted from the
notebooks and builds it with this configuration into `docs/_site`; nothing here executes notebooks.
"""
import tomllib
from pathlib import Path

_pyproject = tomllib.loads((Path(__file__).resolve().parent.parent/"pyproject.toml").read_text())
project = html_title = _pyproject["tool"]["nbdev"]["title"]
author = ", ".join(a["name"] for a in _pyproject["project"]["authors"])

extensions = ["myst_nb"]
nb_execution_mode = "off"  # tools/build_docs.py has executed the notebooks
nb_output_stderr = "warn"  # with -W, any text on stderr that slipped through fails the build
suppress_warnings = ["myst.header"]  # show_doc headings are `###` under any level, as in nbdev sites

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["nbdocs.css"]
html_show_sourcelink = False
html_permalinks_icon = "#"
html_theme_options = {
    "home_page_in_toc": True,  # the index is the first entry of the navigation, as in nbdev's sidebar
    "show_toc_level": 2,
    "use_download_button": True,  # the executed notebook of each page
    "use_fullscreen_button": False,
    "use_repository_button": False,  # no project host is configured, and pages never link out
    "navigation_with_keys": False,
    "show_navbar_depth": 1,
    "navbar_persistent": [],  # search lives in the sidebar; no second search box in the header
}
