"The docs site: the notebooks build into it without warnings, every internal link resolves, README.md is current; and the conversion helpers."
import functools, re, sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/"tools"))
import build_docs, nbdocs

# myst-parser uses Sphinx APIs deprecated for Sphinx 11; not this project's concern
pytestmark = pytest.mark.filterwarnings("ignore:.*Check CHANGES for Sphinx API modifications")

def built_site()->tuple[Path, list[str]]: # the site, and the build's problems
    "The site `make test` built before running pytest (shared with the browser tests); built here if missing or out of date"
    try: return build_docs.SITE, build_docs.site_for_tests()
    except Exception as e: return build_docs.SITE, [f"the build failed: {e!r}"]

@pytest.fixture(scope="session")
def site():
    return built_site()

def test_build_has_no_problems(site):
    "Every notebook ran as nbdev-test runs it, Sphinx ran with -W, no output shows stderr, a local path or an nbdev warning, nothing written into the project"
    problems = [p for p in site[1] if "README" not in p]
    assert not problems, "\n".join(problems)

def test_readme_matches_index(site):
    assert [p for p in site[1] if "README" in p] == [], "run `make docs` and commit README.md"

def test_one_page_per_notebook(site):
    pages = {p.name for p in site[0].glob("*.html")}
    for nb in nbdocs.notebooks(ROOT/"nbs"):
        assert f"{nbdocs.page_name(nb)}.html" in pages, nb.name
        assert (site[0]/"nbs"/nb.name).exists(), f"the site ships {nb.name} for its source link"
    assert "data_processing.html" in pages and "search.html" in pages

def test_api_reference_and_figures(site):
    html = (site[0]/"model_training.html").read_text()
    text = re.sub(r"<[^>]+>", "", html)
    assert "def train_model(" in text and "run parameters; the defaults train the original Decision Tree" in html  # signature and docments
    assert len(re.findall(r'<img[^>]+src="_images/', html)) >= 3  # confusion matrix, feature importances, tree
    assert 'class="dataframe' in html

class _Refs(HTMLParser):
    "Links (`href`), resources (`src`, stylesheets) and element ids of one HTML page"
    def __init__(self):
        super().__init__()
        self.links, self.resources, self.ids = [], [], set()
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ("id", "name"):
            if a.get(k): self.ids.add(a[k])
        if a.get("src"): self.resources.append(a["src"])
        if tag == "link" and a.get("href"): self.resources.append(a["href"])
        elif a.get("href"): self.links.append(a["href"])

@functools.cache  # pages are parsed once, however many links point into them
def _parse(page:Path)->_Refs:
    r = _Refs()
    r.feed(page.read_text())
    return r

def test_internal_links_and_images_resolve(site):
    out, broken, outside = site[0], [], []
    for page in (p for p in out.rglob("*.html") if "_static" not in p.parts):  # _static holds theme templates
        refs = _parse(page)
        for url in refs.links + refs.resources:
            u = urlsplit(url)
            if u.scheme in ("mailto",) or (u.scheme in ("http", "https") and url in refs.links): continue
            if u.scheme or u.netloc: outside.append(f"{page.name}: {url}"); continue
            target = (page.parent/unquote(u.path)).resolve() if u.path else page
            if target.is_dir(): target = target/"index.html"
            if not target.exists(): broken.append(f"{page.relative_to(out)}: {url}"); continue
            if u.fragment and target.suffix == ".html" and u.fragment not in _parse(target).ids:
                broken.append(f"{page.relative_to(out)}: {url} (no such anchor)")
    assert broken == []
    assert outside == [], "pages load resources from outside the site"

def test_show_doc_links_to_source_lines(site):
    html = (site[0]/"data_processing.html").read_text()
    assert 'class="nbdocs-srclink" href="src/data_processing.html#L-' in html
    assert 'id="L-1"' in (site[0]/"src"/"data_processing.html").read_text()

## The conversion helpers, without a build

def test_page_names_follow_nbdev():
    assert nbdocs.page_name(Path("nbs/01_data_processing.ipynb")) == "data_processing"
    assert nbdocs.page_name(Path("nbs/index.ipynb")) == "index"
    names = [p.name for p in nbdocs.notebooks(ROOT/"nbs")]
    assert names[0] == "index.ipynb" and names[1:] == sorted(names[1:])

def test_cell_options():
    from fastcore.nbio import mk_cell
    assert nbdocs.split_options(mk_cell("#| echo: false\n#| output: asis\nshow_doc(f)")) == (True, "show_doc(f)")
    assert nbdocs.split_options(mk_cell("#| eval: false\nx = 1  #| not an option")) == (False, "x = 1  #| not an option")
    with pytest.raises(ValueError, match="code-fold"): nbdocs.split_options(mk_cell("#| code-fold: true\nx = 1"))

def test_links():
    md = "Raise [`DataValidationError`](/core.html#datavalidationerror) early"
    assert nbdocs.links_to_myst(md) == "Raise [`DataValidationError`](#core-datavalidationerror) early"
    src = '[source](/blob/main/iris_classifier/core.py#L42){target="_blank" style="float:right"}'
    assert nbdocs.links_to_myst(src) == '<a class="nbdocs-srclink" href="src/core.html#L-42">source</a>'

def test_readme_links_to_notebooks():
    md = "[Deploying](deploy_gke.ipynb), [a part](deploy_gke.ipynb#rolling-back), [out](https://x.org/a.ipynb), [site](/core.html#x)"
    assert nbdocs.readme_links(md, "nbs") == md.replace("](deploy_gke", "](nbs/deploy_gke")

def test_readme_links_resolve():
    "Every relative link in README.md names a file of the project (links to other pages point at their notebooks)"
    links = re.findall(r"\]\(([^)\s]+)\)", (ROOT/"README.md").read_text())
    assert [u for u in links if not urlsplit(u).scheme and not (ROOT/unquote(urlsplit(u).path)).exists()] == []

def test_headings_are_not_linked():
    md = "## [`predict`](/serving.html#predict)\n\n[`predict`](/serving.html#predict) scores rows"
    assert nbdocs.unlink_headings(md) == "## `predict`\n\n[`predict`](/serving.html#predict) scores rows"

def test_links_to_undocumented_symbols_are_dropped():
    md = "[`_helper`](#core-_helper), [`model_dir`](#core-model_dir), [a heading](#why-this-way)"
    assert nbdocs.drop_dead_links(md, {"core-model_dir"}, ["core"]) == "`_helper`, [`model_dir`](#core-model_dir), [a heading](#why-this-way)"

def test_show_doc_becomes_a_labelled_section():
    md = "---\n\n[source](/blob/main/iris_classifier/core.py#L9){target=\"_blank\"}\n\n### model_dir\n\n```python\ndef model_dir()\n```"
    seen = set()
    assert nbdocs.show_doc_to_md(md, "core", seen).splitlines()[:3] == ["(core-model_dir)=", "### model_dir", ""]
    assert nbdocs.show_doc_to_md(md.replace("model_dir", "Model_Dir"), "core", seen).startswith("(core-model_dir-1)=\n### Model_Dir")

def test_html_table_to_markdown():
    html = ('<table class="dataframe"><thead><tr><th></th><th>value</th></tr><tr><th>metric</th><th></th></tr></thead>'
            '<tbody><tr><th>accuracy</th><td>0.9|1</td></tr></tbody></table>')
    assert nbdocs.html_table_to_md(html) == "| metric | value |\n|---|---|\n| accuracy | 0.9\\|1 |"
    assert nbdocs.html_table_to_md("<pre>no table</pre>") is None

def test_output_problems():
    from fastcore.nbio import dict2nb
    nb = dict2nb({"cells": [{"cell_type": "code", "source": "warn()", "metadata": {}, "outputs": [
        {"output_type": "stream", "name": "stderr", "text": ["/home/me/x.py:1: UserWarning: careful\n"]}]}], "metadata": {}})
    problems = nbdocs.output_problems(nb, ["/home/me"])
    assert len(problems) == 2 and "stderr" in problems[0] and "local path /home/me" in problems[1]

def _undocumented(obj, name:str)->list[str]:
    "What `show_doc` would leave blank for `obj`: no docstring of its own, or a parameter without a docment"
    import inspect
    from fastcore.docments import docments
    if inspect.isclass(obj):
        return [] if vars(obj).get("__doc__") and not obj.__doc__.startswith(f"{obj.__name__}(") else [f"{name}: no docstring"]
    res = [] if obj.__doc__ else [f"{name}: no docstring"]
    skip = {p.name for p in inspect.signature(obj).parameters.values() if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return res + [f"{name}({p}): no comment after the parameter" for p, d in docments(obj).items() if d is None and p not in skip | {"return", "self"}]

def test_every_exported_symbol_is_documented():
    "Each exported function and class has a docstring, and each parameter a docment (a comment after it)"
    import importlib, inspect
    from nbdev.config import get_config
    problems = []
    for py in sorted(get_config().lib_path.glob("[!_]*.py")):
        mod = importlib.import_module(f"{py.parent.name}.{py.stem}")
        for n in getattr(mod, "__all__", []):
            obj = getattr(mod, n)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == mod.__name__: problems += _undocumented(obj, f"{py.stem}.{n}")
    assert not problems, "\n".join(problems)
