"""The docs site: the notebooks build into it without warnings, every internal link resolves, README.md is current;
and the conversion helpers."""
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
    """The site `make test` built before running pytest (shared with the browser tests); built here if missing or out
    of date"""
    try: return build_docs.SITE, build_docs.site_for_tests()
    except Exception as e: return build_docs.SITE, [f"the build failed: {e!r}"]

@pytest.fixture(scope="session")
def site():
    return built_site()

def test_build_has_no_problems(site):
    """Every notebook ran as nbdev-test runs it, Sphinx ran with -W, no output shows stderr, a local path or an nbdev
    warning, nothing written into the project"""
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

def test_navigation_lists_guides_then_chapters(site):
    "The sidebar: the guides in the order README.md lists them, then the chapters in order, then the module sources"
    nav = re.search(r'<nav class="[^"]*bd-docs-nav.*?</nav>', (site[0]/"index.html").read_text(), re.S)[0]
    captions = re.findall(r'<span class="caption-text">([^<]+)</span>', nav)
    pages = [p.removesuffix(".html") for p in re.findall(r'class="reference internal" href="([^"#]+)"', nav)]
    nbs = nbdocs.notebooks(ROOT/"nbs")
    chapters = [nbdocs.page_name(nb) for nb in nbs if nbdocs.module_of(nb)]
    linked = re.findall(r"\]\(nbs/([\w.-]+\.ipynb)", (ROOT/"README.md").read_text())
    readme = [nbdocs.page_name(Path(p)) for p in linked]
    guides = list(dict.fromkeys(p for p in readme if p not in chapters))
    assert captions == ["Guides", "Chapters", "Module source"]
    assert pages[:len(guides)] == guides and guides[0] == "guide_training"
    assert pages[len(pages) - len(chapters) * 2:len(pages) - len(chapters)] == chapters and chapters[0] == "core"

def test_api_reference_and_figures(site):
    html = (site[0]/"model_training.html").read_text()
    text = re.sub(r"<[^>]+>", "", html)
    # signature and docments
    assert "def train_model(" in text and "run parameters; the defaults train the original Decision Tree" in html
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
    assert nbdocs.split_options(mk_cell("#| eval: false\nx = 1  #| not an option")) == (False,
                                                                                       "x = 1  #| not an option")
    with pytest.raises(ValueError, match="code-fold"): nbdocs.split_options(mk_cell("#| code-fold: true\nx = 1"))

def test_links():
    md = "Raise [`DataValidationError`](/core.html#datavalidationerror) early"
    assert nbdocs.links_to_myst(md) == "Raise [`DataValidationError`](#core-datavalidationerror) early"
    src = '[source](/blob/main/iris_classifier/core.py#L42){target="_blank" style="float:right"}'
    assert nbdocs.links_to_myst(src) == '<a class="nbdocs-srclink" href="src/core.html#L-42">source</a>'

def test_readme_links_to_notebooks():
    md = ("[Deploying](deploy_gke.ipynb), [a part](deploy_gke.ipynb#rolling-back), [out](https://x.org/a.ipynb), "
          "[site](/core.html#x)")
    assert nbdocs.readme_links(md, "nbs") == md.replace("](deploy_gke", "](nbs/deploy_gke")
    md = "![The pipeline](images/pipeline.svg) and [above](#quick-start)"
    assert nbdocs.readme_links(md, "nbs") == "![The pipeline](nbs/images/pipeline.svg) and [above](#quick-start)"

def test_links_to_notebooks_name_their_pages():
    md = ("[Core](00_core.ipynb), [a part](05_model_training.ipynb#the-gate), [Training](guide_training.ipynb), "
          "[out](https://x.org/01_a.ipynb)")
    assert nbdocs.page_links(md) == ("[Core](core.ipynb), [a part](model_training.ipynb#the-gate), "
                                     "[Training](guide_training.ipynb), [out](https://x.org/01_a.ipynb)")

_re_fence = re.compile(r"^```.*?^```", re.S | re.M)

def github_anchors(md:str)->set[str]:
    "The anchors of `md`'s headings, as GitHub (and the site, for these headings) makes them"
    slug = lambda h: re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
    return {slug(h) for h in re.findall(r"^#+ (.+)$", _re_fence.sub("", md), re.M)}

def link_problems(md:str, # markdown: README.md, or a notebook's markdown cells
                  base:Path, # the directory its relative links start from
                  site:Path, # the built docs site
                 )->list[str]:
    "Links of `md` that do not resolve: missing files, notebooks the site has no page for, anchors not on their page"
    problems = []
    for url in re.findall(r"\]\(([^)\s]+)\)", _re_fence.sub("", md)):
        u = urlsplit(url)
        if u.scheme or u.netloc: continue
        if not u.path:
            if u.fragment not in github_anchors(md): problems.append(f"{url}: no such heading")
            continue
        if not (target := base/unquote(u.path)).exists(): problems.append(f"{url}: no such file"); continue
        if target.suffix != ".ipynb": continue
        page = site/f"{nbdocs.page_name(target)}.html"
        if not page.exists(): problems.append(f"{url}: the site has no page {page.name}")
        elif u.fragment and u.fragment not in _parse(page).ids: problems.append(f"{url}: no anchor on {page.name}")
    return problems

def test_broken_links_are_found(site):
    md = ("# Top\n\n[a](nbs/guide_nope.ipynb), [b](nbs/guide_training.ipynb#no-such-part), [c](#nowhere), "
          "![d](nbs/images/none.svg), [e](#top), [f](nbs/guide_training.ipynb), [g](https://example.org/x.ipynb)")
    assert link_problems(md, ROOT, site[0]) == [
        "nbs/guide_nope.ipynb: no such file", "nbs/guide_training.ipynb#no-such-part: no anchor on guide_training.html",
        "#nowhere: no such heading", "nbs/images/none.svg: no such file"]

def test_readme_links_resolve(site):
    "Every relative link in README.md names a file of the project, a notebook a page the site has, an anchor a heading"
    assert link_problems((ROOT/"README.md").read_text(), ROOT, site[0]) == []

def test_notebook_links_resolve(site):
    "Links in the notebooks' markdown work on GitHub (from `nbs/`) and in the site: the docs pages link one another so"
    from fastcore.nbio import read_nb
    problems = []
    for nb in nbdocs.notebooks(ROOT/"nbs"):
        md = "\n\n".join(c.source for c in read_nb(nb).cells if c.cell_type == "markdown")
        problems += [f"{nb.name}: {p}" for p in link_problems(md, nb.parent, site[0])]
    assert problems == []

def test_readme_is_a_front_door(site):
    "README.md stays short (issue 21): the rest is in the docs pages it links, and its picture shows in the site too"
    readme = (ROOT/"README.md").read_text()
    assert len(readme.splitlines()) <= 120
    pages = [u for u in re.findall(r"\]\((nbs/[^)\s#]+\.ipynb)", readme)]
    guides = ["training", "predicting", "serving", "monitoring", "shipping", "development"]
    assert {f"nbs/guide_{g}.ipynb" for g in guides} <= set(pages)
    pictures = re.findall(r"!\[[^\]]*\]\(nbs/([^)\s]+)\)", readme)
    assert pictures and all((ROOT/"nbs"/p).exists() for p in pictures)
    shown = _parse(site[0]/"index.html").resources
    assert all(f"_images/{Path(p).name}" in shown for p in pictures), shown

def test_headings_are_not_linked():
    md = "## [`predict`](/serving.html#predict)\n\n[`predict`](/serving.html#predict) scores rows"
    assert nbdocs.unlink_headings(md) == "## `predict`\n\n[`predict`](/serving.html#predict) scores rows"

def test_links_to_undocumented_symbols_are_dropped():
    md = "[`_helper`](#core-_helper), [`model_dir`](#core-model_dir), [a heading](#why-this-way)"
    assert (nbdocs.drop_dead_links(md, {"core-model_dir"}, ["core"])
            == "`_helper`, [`model_dir`](#core-model_dir), [a heading](#why-this-way)")

def test_show_doc_becomes_a_labelled_section():
    md = ("---\n\n[source](/blob/main/iris_classifier/core.py#L9){target=\"_blank\"}\n\n"
          "### model_dir\n\n```python\ndef model_dir()\n```")
    seen = set()
    assert nbdocs.show_doc_to_md(md, "core", seen).splitlines()[:3] == ["(core-model_dir)=", "### model_dir", ""]
    again = nbdocs.show_doc_to_md(md.replace("model_dir", "Model_Dir"), "core", seen)
    assert again.startswith("(core-model_dir-1)=\n### Model_Dir")

def test_html_table_to_markdown():
    html = ('<table class="dataframe"><thead><tr><th></th><th>value</th></tr><tr><th>metric</th><th></th></tr></thead>'
            '<tbody><tr><th>accuracy</th><td>0.9|1</td></tr></tbody></table>')
    assert nbdocs.html_table_to_md(html) == "| metric | value |\n|---|---|\n| accuracy | 0.9\\|1 |"
    assert nbdocs.html_table_to_md("<pre>no table</pre>") is None

def test_output_problems():
    from fastcore.nbio import dict2nb
    nb = dict2nb({"cells": [{"cell_type": "code", "source": "warn()", "metadata": {}, "outputs": [
        {"output_type": "stream", "name": "stderr", "text": ["/home/me/x.py:1: UserWarning: careful\n"]}]}],
        "metadata": {}})
    problems = nbdocs.output_problems(nb, ["/home/me"])
    assert len(problems) == 2 and "stderr" in problems[0] and "local path /home/me" in problems[1]

def _undocumented(obj, name:str)->list[str]:
    "What `show_doc` would leave blank for `obj`: no docstring of its own, or a parameter without a docment"
    import inspect
    from fastcore.docments import docments
    if inspect.isclass(obj):
        own = vars(obj).get("__doc__") and not obj.__doc__.startswith(f"{obj.__name__}(")
        return [] if own else [f"{name}: no docstring"]
    res = [] if obj.__doc__ else [f"{name}: no docstring"]
    skip = {p.name for p in inspect.signature(obj).parameters.values() if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return res + [f"{name}({p}): no comment after the parameter"
                  for p, d in docments(obj).items() if d is None and p not in skip | {"return", "self"}]

def test_every_exported_symbol_is_documented():
    "Each exported function and class has a docstring, and each parameter a docment (a comment after it)"
    import importlib, inspect
    from nbdev.config import get_config
    problems = []
    for py in sorted(get_config().lib_path.glob("[!_]*.py")):
        mod = importlib.import_module(f"{py.parent.name}.{py.stem}")
        for n in getattr(mod, "__all__", []):
            obj = getattr(mod, n)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == mod.__name__:
                problems += _undocumented(obj, f"{py.stem}.{n}")
    assert not problems, "\n".join(problems)

## The latest training run's page

RUN_ID = "20261130T061500Z-4f2a9c"

@pytest.fixture(scope="module")
def executed_run(tmp_path_factory)->Path:
    """A real run's notebook: the training notebook executed by papermill with an absolute `output_dir`, kept as
    `iris-classifier train` keeps it"""
    import subprocess
    tmp = tmp_path_factory.mktemp("training")
    nb = tmp/"artifacts"/"runs"/RUN_ID/nbdocs.RUN_NOTEBOOK
    nb.parent.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "papermill", str(ROOT/"nbs"/nbdocs.RUN_NOTEBOOK), str(nb), "-k", "python3",
                    "--no-progress-bar", "-p", "output_dir", str(tmp/"artifacts")],
                   check=True, capture_output=True, cwd=tmp, timeout=600)
    return nb

def test_latest_run_is_the_newest(tmp_path):
    for run in ["20261129T235959Z-ffffff", "20261130T000000Z-000000", "20261130T000000Z-00000a"]:
        (tmp_path/run).mkdir()
        (tmp_path/run/nbdocs.RUN_NOTEBOOK).write_text("{}")
    (tmp_path/"20261201T000000Z-aaaaaa").mkdir()  # a run that left no notebook
    assert nbdocs.latest_run(tmp_path) == tmp_path/"20261130T000000Z-00000a"/nbdocs.RUN_NOTEBOOK
    assert nbdocs.latest_run(tmp_path/"missing") is None and nbdocs.latest_run(None) is None

def test_injected_paths_are_shortened():
    src = ('# Parameters\ndata_path = "/srv/x/checkout/data/new.csv"\noutput_dir = "/tmp/run/artifacts"\n'
           'seed = 3\nname = "a/b"')
    assert nbdocs.shorten_parameters(src, Path("/srv/x/checkout")).splitlines()[1:] == [
        'data_path = "data/new.csv"  # shortened: the run was given an absolute path',
        'output_dir = ".../artifacts"  # shortened: the run was given an absolute path', "seed = 3", 'name = "a/b"']

def test_run_page_shows_the_run_as_it_ran(executed_run):
    import nbformat
    res = nbdocs.render_run(executed_run)
    assert res["page"] == "latest_run" and res["problems"] == []
    page = nbformat.reads(res["nb"], as_version=4)
    text = res["nb"]
    # the run's temporary directory, this checkout
    assert str(executed_run.parents[3]) not in text and str(ROOT) not in text
    code = [c.source for c in page.cells if c.cell_type == "code"]
    assert 'output_dir = ".../artifacts"  # shortened: the run was given an absolute path' in "\n".join(code)
    # directives and hidden cells gone
    assert not any("#|" in c for c in code) and not any(c.startswith("from fastcore.test import") for c in code)
    images = [o for c in page.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the run's own figures, not re-drawn
    assert RUN_ID in page.cells[0].source and page.cells[0].source.startswith("# Latest training run")

def test_run_page_refuses_what_it_cannot_shorten(executed_run, tmp_path):
    import json
    nb = json.loads(executed_run.read_text())
    last = next(c for c in reversed(nb["cells"]) if c["cell_type"] == "code")
    where = nb["metadata"]["papermill"]["parameters"]["output_dir"]
    last["outputs"] += [{"output_type": "stream", "name": "stdout", "text": f"wrote {where}/runs/x\n"},
                        {"output_type": "stream", "name": "stderr", "text": "UserWarning: careful\n"}]
    changed = tmp_path/RUN_ID/nbdocs.RUN_NOTEBOOK
    changed.parent.mkdir()
    changed.write_text(json.dumps(nb))
    problems = nbdocs.render_run(changed)["problems"]
    assert any(f"local path {where}" in p for p in problems) and any("stderr" in p for p in problems), problems

def test_run_page_renders(executed_run, tmp_path):
    "Sphinx with the site's configuration and -W turns the run's page into HTML with its figures"
    import nbformat
    src, extra = tmp_path/"src", tmp_path/"extra"
    src.mkdir(), extra.mkdir()
    (src/"index.md").write_text("# Home\n\n```{toctree}\n:hidden:\n\nmodel_training\nlatest_run\n```\n")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Model training")]),
                   src/"model_training.ipynb")
    (src/"latest_run.ipynb").write_text(nbdocs.render_run(executed_run)["nb"])
    assert build_docs.sphinx(src, tmp_path/"out", tmp_path, extra) == 0
    html = (tmp_path/"out"/"latest_run.html").read_text()
    assert "Latest training run" in html and RUN_ID in html and 'href="model_training.html"' in html
    assert len(re.findall(r'<img[^>]+src="_images/', html)) >= 3
