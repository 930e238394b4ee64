"""Turn the project's notebooks into Sphinx (MyST-NB) pages and a README, without Quarto.

Notebooks are committed without outputs, so each one is first executed the way `nbdev-test` runs it (in
process, `IN_TEST=1`, the cells `nb_test_cells` selects with the configured `tst_flags`, `cell_timeout` and
`exec_profile`), then processed by nbdev's own docs processors (`show_doc` for every exported symbol, doc
links, hidden cells removed), and finally converted to valid nbformat for MyST-NB. Only what these notebooks
use is converted: a Quarto cell option they do not use fails the build rather than being dropped silently,
and Quarto's markdown extensions (callouts, for one) are not translated.

nbdev API used. Public (in the module's `__all__`): `nbdev.doclinks.nbglob`, `nbdev.config.get_config`,
`nbdev.config.nbpath2html`, `nbdev.test.nb_test_cells`, `nbdev.processors.FilterDefaults`,
`nbdev.processors.insert_warning`, `nbdev.export.ExportModuleProc`, `nbdev.process.NBProcessor`,
`execnb.shell.CaptureShell`, and from fastcore (nbdev's notebook layer) `read_nb`, `mk_cell`,
`cell_frontmatter` and `NbCell.directives` / `remove_directives`, the `#|` directive parser nbdev itself
uses. No private function is called, but this module relies on undocumented details of nbdev 3 that a new
version could change (the tests would then fail): `FrontmatterProc` needs the notebook's path in `nb.path_`;
the `show_doc` cells nbdev adds carry `has_sd`; and the *format* of what nbdev writes: the frontmatter raw
cell, `show_doc`'s markdown (`---`, a `[source](/blob/...#Ln){...}` link, a `###` heading) and
root-relative doc links (`/page.html#anchor`, as made when no `doc_host` is set).
`nbdev.quarto.nbdev_proc_nbs` (and so `nbdev.serve.proc_nbs`'s usual caller) is deliberately not used: it
tries to install Quarto through `sudo`, rewrites `nbs/sidebar.yml` and `nbs/nbdev.yml`, and would only run
the cells `show_doc` needs, while the committed notebooks have no outputs to show.
"""
import ast, copy, json, os, re, sys, sysconfig, tempfile, warnings
from html.parser import HTMLParser
from pathlib import Path

import nbformat

# The Quarto cell options nbdev leaves in these notebooks once processed: its `clean_show_doc` marks `show_doc`
# cells `echo: false` and `output: asis` (the page shows their markdown output only); `eval: false` cells
# simply have no output.
SHOW_DOC = {"echo": "false", "output": "asis"}
PLAIN = {"eval": "false"}
_re_doclink = re.compile(r"\]\(/([\w.-]+)\.html#([^)\s]+)\)")
_re_linked = re.compile(r"\[([^\]]+)\]\(/[\w.-]+\.html#[^)\s]+\)")
_re_srclink = re.compile(r"\[source\]\(/blob/[^/]+/([^#)]+)#L(\d+)\)(\{[^}]*\})?")

def _text(v)->str: return "".join(v) if isinstance(v, list) else str(v)  # nbformat allows text as a list of lines

def notebooks(nbs_path:Path|None=None)->list[Path]: # index first, then the numbered notebooks in order
    "The notebooks the docs are made of, in navigation order (as nbdev's sidebar orders them)"
    from nbdev.doclinks import nbglob
    files = nbglob(nbs_path, func=Path, file_glob="*.ipynb", skip_file_re=r"^[_.]")
    return sorted(files, key=lambda p: (p.stem != "index", p.name))

def page_name(nb:Path)->str: # `01_data_processing.ipynb` -> `data_processing`
    "The docs page of notebook `nb`, as nbdev names it"
    from nbdev.config import nbpath2html
    return nbpath2html(nb).stem

ROOT = Path(__file__).resolve().parent.parent

def local_paths(*extra:str|Path)->list[str]: # absolute paths that must not appear in published outputs
    "This machine's project, environment and temporary paths, longest first"
    paths = {str(ROOT), sys.prefix, sysconfig.get_paths()["stdlib"], f"{tempfile.gettempdir()}/", *map(str, extra)}
    return sorted(paths, key=len, reverse=True)

def execute(nb_path:Path, # notebook to run
            workdir:Path, # current directory while its cells run
           ):
    "Run `nb_path` as `nbdev-test` does and return the notebook with its outputs (raises on a failing cell)"
    from execnb.shell import CaptureShell
    from fastcore.nbio import read_nb
    from nbdev.config import get_config
    from nbdev.test import nb_test_cells
    cfg = get_config()
    nb, run = read_nb(nb_path), {c.id for c in nb_test_cells(nb_path, cfg.tst_flags.split())}
    shell, cwd = CaptureShell(nb_path, profile=bool(cfg.exec_profile)), os.getcwd()
    os.chdir(workdir)
    try: shell.run_all(nb, exc_stop=True, preproc=lambda c: c.id not in run, cell_timeout=cfg.cell_timeout or None)
    except Exception as e:
        raise RuntimeError(f"{nb_path.name} failed while building the docs:\n{shell.prettytb(nb_path)}") from e
    finally:
        os.chdir(cwd)
        shell.close()
    for out in (o for c in nb.cells for o in c.get("outputs", [])):  # nbdev's processors expect text as one string
        if "text" in out: out["text"] = _text(out["text"])
        for k, v in out.get("data", {}).items(): out["data"][k] = _text(v) if k.startswith("text/") else v
    nb.path_ = str(nb_path)
    return nb

def process(nb)->list[str]: # warnings nbdev raised while processing
    "Apply nbdev's docs processors (`show_doc`, links, hidden cells) to executed notebook `nb` in place"
    from nbdev.processors import FilterDefaults
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FilterDefaults()(nb)
    return [f"nbdev: {w.message}".strip() for w in caught]

def output_problems(nb, # executed notebook
                    forbidden:list[str], # strings no output may contain, such as local paths
                   )->list[str]:
    "What must not be published from `nb`'s outputs: text on stderr, errors, and local paths"
    problems = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            where = f"cell {i} ({cell.source.strip().splitlines()[-1][:60] if cell.source.strip() else 'empty'})"
            text = _text(out.get("text", "")) + "".join(_text(v) for v in out.get("data", {}).values())
            if out.get("name") == "stderr": problems.append(f"{where} writes to stderr: {text.strip()[:300]}")
            if out.get("output_type") == "error": problems.append(f"{where} raised {out.get('ename')}")
            problems += [f"{where} shows the local path {p}" for p in forbidden if p in text]
    return problems

def render_page(nb_path:Path, # notebook to turn into a page
                scratch:Path, # a fresh directory for its run
               )->dict: # page name and title, MyST-NB notebook, README text (for the index) and problems
    "Execute, process and convert one notebook; `tools/build_docs.py` runs this in worker processes"
    from fastcore.nbio import read_nb
    scratch.mkdir(parents=True)
    os.environ.update(IN_TEST="1", IRIS_ARTIFACTS_DIR=str(scratch/"artifacts"),
                      IRIS_MODEL_DIR=str(scratch/"artifacts"/"model"))
    os.chdir(ROOT)  # nbdev finds its configuration from the working directory
    page = page_name(nb_path)
    nb = execute(nb_path, scratch)
    problems = process(nb)
    problems += output_problems(nb, local_paths(scratch.parent))  # after processing: `show_doc` output is published too
    readme = to_readme(nb, f"nbs/{nb_path.name}") if page == "index" else None
    title = frontmatter(nb).get("title")
    if not re.match(r"# \S", next((c.source for c in read_nb(nb_path).cells if c.cell_type == "markdown"), "")):
        problems.append("the first markdown cell should be `# Title` then `> summary`: "
                        "nbdev takes the page title from it")
    myst = to_myst(nb, page, header=source_links(nb_path, page))
    return dict(page=page, title=title or page, nb=nbformat.writes(myst), readme=readme,
                problems=[f"{nb_path.name}: {p}" for p in problems])

def module_of(nb_path:Path)->str|None: # `iris_classifier/core.py`, or None for a notebook that exports nothing
    "The module file notebook `nb_path` exports to: its `#| default_exp`, read as `nbdev-export` reads it"
    from nbdev.config import get_config
    from nbdev.export import ExportModuleProc
    from nbdev.process import NBProcessor
    NBProcessor(nb_path, exp := ExportModuleProc(), process=True)
    mod = getattr(exp, "default_exp", None)
    return f"{get_config().lib_path.name}/{mod.replace('.', '/')}.py" if mod else None

def source_links(nb_path:Path, page:str)->str:
    "The line under a page's title linking to its notebook and module source in the site"
    links = [f'<a href="nbs/{nb_path.name}" download>nbs/{nb_path.name}</a>']
    if mod := module_of(nb_path): links.append(f'<a href="src/{Path(mod).stem}.html">{mod}</a>')
    return f'<p class="nbdocs-sources">Source: {" · ".join(links)}</p>'

## Conversion to MyST-NB

def split_options(cell)->tuple[bool, str]: # whether it is a `show_doc` cell, and its source without options
    "Read the options nbdev left on processed code `cell` with nbdev's own `#|` parser; fail on any not translated here"
    from fastcore.nbio import mk_cell
    opts, bare = cell.directives, mk_cell(cell.source)  # a copy: each notebook is converted twice (page, README)
    bare.remove_directives()
    show_doc = opts.items() >= SHOW_DOC.items()
    if show_doc: opts = {k: v for k, v in opts.items() if k not in SHOW_DOC}
    if opts and opts != PLAIN:
        raise ValueError(f"the Quarto cell options {opts} have no translation in tools/nbdocs.py")
    return show_doc, bare.source

def target(page:str, anchor:str)->str:
    "The Sphinx label of a `show_doc` entry, from nbdev's page and anchor"
    return f"{page}-{anchor.lower()}"

_re_pagelink = re.compile(r"\]\((?![\w+.-]+:|/)([^)\s#]+\.ipynb)(#[^)\s]*)?\)")

def page_links(md:str)->str:
    "Point links to a notebook (`05_model_training.ipynb`, as on GitHub) at its page (`model_training.ipynb`)"
    return _re_pagelink.sub(lambda m: f"]({page_name(Path(m[1]))}.ipynb{m[2] or ''})", md)

def unlink_headings(md:str)->str:
    "Drop nbdev's doc links from headings: a heading names its section, and a same-named symbol may live elsewhere"
    return re.sub(r"^#+ .*$", lambda m: _re_linked.sub(r"\1", m[0]), md, flags=re.MULTILINE)

def links_to_myst(md:str)->str:
    "Point nbdev's root-relative doc links at Sphinx labels and its source links at the site's source pages"
    md = _re_doclink.sub(lambda m: f"](#{target(m[1], m[2])})", md)
    src = lambda m: f'<a class="nbdocs-srclink" href="src/{Path(m[1]).stem}.html#L-{m[2]}">source</a>'
    return _re_srclink.sub(src, md)

_re_label = re.compile(r"^\((\S+)\)=$", re.MULTILINE)
_re_reflink = re.compile(r"\[([^\]]+)\]\(#([^)\s]+)\)")

def labels(nb)->set[str]:
    "The `show_doc` labels defined in converted notebook `nb`"
    return {m for c in nb.cells if c.cell_type == "markdown" for m in _re_label.findall(c.source)}

def drop_dead_links(md:str, # converted markdown
                    known:set[str], # every `show_doc` label of the site
                    pages:list[str], # every page name
                   )->str:
    "Unlink nbdev's links to symbols without a `show_doc` section (private helpers nbdev still indexes)"
    dead = lambda t: t not in known and any(t.startswith(f"{p}-") for p in pages)
    return _re_reflink.sub(lambda m: m[1] if dead(m[2]) else m[0], md)

def show_doc_to_md(md:str, # a `show_doc` markdown output
                   page:str, # the page it is on
                   seen:set|None=None, # labels already used on the page: `Metrics` and `metrics` share nbdev's anchor
                  )->str:
    "A `show_doc` output as a labelled section: heading first, then the source link, signature and table"
    md = md.strip().removeprefix("---").strip().replace("__main__.", "")  # classes nbdev defined while documenting
    src = _re_srclink.search(md)
    md = _re_srclink.sub("", md).strip() if src else md
    head, _, body = md.partition("\n")
    name = head.lstrip("#").strip()
    link = f"\n\n{links_to_myst(src[0])}" if src else ""
    label, seen = target(page, name), seen if seen is not None else set()
    label = next(f"{label}-{i}" for i in range(1, 1000) if f"{label}-{i}" not in seen) if label in seen else label
    seen.add(label)
    return f"({label})=\n{head}{link}\n\n{links_to_myst(body.strip())}"

def _markdown_output(cell)->str:
    return "".join(_text(o.get("data", {}).get("text/markdown", "")) for o in cell.get("outputs", []))

OUTPUT_KEYS = ("output_type", "name", "text", "data", "metadata", "execution_count", "ename", "evalue", "traceback")
KERNEL = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
          "language_info": {"name": "python", "pygments_lexer": "ipython3"}}  # the metadata of the pages' notebooks

def _clean_outputs(outputs:list)->list:
    res = []
    for o in outputs:
        o = {k: v for k, v in o.items() if k in OUTPUT_KEYS}
        if o["output_type"] in ("display_data", "execute_result"): o.setdefault("metadata", {})
        res.append(o)
    return res

def _src_line(cell)->int:
    m = _re_srclink.search(_markdown_output(cell))
    return int(m[2]) if m else 0

def source_order(cells:list)->list:
    "Put each run of `show_doc` cells nbdev added (marked `has_sd`) in source order; nbdev inserts them reversed"
    res, run = [], []
    for cell in cells + [None]:
        if cell is not None and getattr(cell, "has_sd", False): run.append(cell); continue
        res += sorted(run, key=_src_line) + ([cell] if cell is not None else [])
        run = []
    return res

def frontmatter(nb)->dict:
    "The frontmatter nbdev's `FrontmatterProc` put in `nb`'s first raw cell (title, description, output-file)"
    from fastcore.nbio import cell_frontmatter
    return cell_frontmatter(nb.cells[0].source) if nb.cells and nb.cells[0].cell_type == "raw" else {}

def to_myst(nb, # processed notebook
            page:str, # its page name
            header:str="", # markdown put under the title, such as links to the sources
           )->nbformat.NotebookNode:
    "Convert a processed notebook into a valid nbformat notebook MyST-NB renders as nbdev's site would"
    from nbdev.processors import insert_warning
    fm, cells, seen = frontmatter(nb), [], set()
    if fm: nb.cells = nb.cells[1:]
    nb.cells = source_order(nb.cells)
    title = [f"# {fm.get('title', page)}"]
    if fm.get("description"): title.append(f"```{{container}} nbdocs-description\n{fm['description']}\n```")
    cells.append(nbformat.v4.new_markdown_cell("\n\n".join(title + ([header] if header else []))))
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            if cell.source.strip() == insert_warning.content: continue
            cells.append(nbformat.v4.new_markdown_cell(page_links(links_to_myst(unlink_headings(cell.source)))))
        elif cell.cell_type == "code":
            show_doc, source = split_options(cell)
            if show_doc:
                if md := _markdown_output(cell):
                    cells.append(nbformat.v4.new_markdown_cell(show_doc_to_md(md, page, seen)))
                continue
            new = nbformat.v4.new_code_cell(source, execution_count=cell.get("execution_count"))
            new.outputs = [nbformat.from_dict(o) for o in _clean_outputs(cell.get("outputs", []))]
            cells.append(new)
        else: cells.append(nbformat.v4.new_raw_cell(cell.source))
    out = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(KERNEL))
    nbformat.validate(out)
    return out

## A training run's page

# the executed notebook `iris-classifier train` keeps in `artifacts/runs/<run id>/`
RUN_NOTEBOOK = "05_model_training.ipynb"
INJECTED = "injected-parameters"  # the tag of the cell papermill adds after the `parameters` cell

def latest_run(runs:Path|None, # a directory of training runs, such as `artifacts/runs`
              )->Path|None: # the newest run's executed notebook, or None if there is none
    "The executed training notebook of the newest run in `runs`: run ids (`YYYYMMDDTHHMMSSZ-xxxxxx`) sort by time"
    if not (runs and Path(runs).is_dir()): return None
    found = sorted(Path(runs).glob(f"*/{RUN_NOTEBOOK}"), key=lambda p: p.parent.name)
    return found[-1] if found else None

def shorten_path(path:str, # an absolute path
                 root:Path, # the checkout
                )->str: # `path` relative to `root`, or `.../` and its last part
    "How a path the run was given is shown: relative to the checkout when inside it, else by its name only"
    p = Path(path)
    return str(p.relative_to(root)) if p.is_relative_to(root) and p != root else f".../{p.name}"

def shorten_parameters(source:str, # the source of papermill's injected-parameters cell
                       root:Path, # the checkout
                      )->str:
    "The injected parameters with every absolute path shortened by `shorten_path`, and a comment saying so"
    def line(text):
        m = re.fullmatch(r"(\w+) = (.+)", text)
        try: value = ast.literal_eval(m[2]) if m else None
        except (ValueError, SyntaxError): value = None
        if not (isinstance(value, str) and os.path.isabs(value)): return text
        return f"{m[1]} = {json.dumps(shorten_path(value, root))}  # shortened: the run was given an absolute path"
    return "\n".join(map(line, source.splitlines()))

def run_paths(nb)->list[str]: # absolute paths that must not appear on the page
    "The absolute paths papermill recorded for a run (its parameters, input and output notebook), wherever it ran"
    pm = nb.metadata.get("papermill", {})
    values = [*pm.get("parameters", {}).values(), pm.get("input_path"), pm.get("output_path")]
    return [v for v in values if isinstance(v, str) and os.path.isabs(v)]

def _run_cell(cell, root:Path):
    "One cell of a run's notebook as it goes on the page, or None if the page leaves it out"
    if cell.cell_type == "markdown": return nbformat.v4.new_markdown_cell(cell.source)
    if cell.cell_type != "code": return None
    if {"hide", "default_exp"} & set(cell.directives) or cell.directives.get("include") == "false": return None
    from fastcore.nbio import mk_cell
    bare = mk_cell(cell.source)
    bare.remove_directives()
    injected = INJECTED in cell.get("metadata", {}).get("tags", [])
    source = shorten_parameters(bare.source, root) if injected else bare.source
    if not source.strip(): return None
    new = nbformat.v4.new_code_cell(source, execution_count=cell.get("execution_count"))
    new.outputs = [nbformat.from_dict(o) for o in _clean_outputs(cell.get("outputs", []))]
    return new

def run_to_myst(nb, # a run's executed training notebook, as papermill wrote it
                run_id:str, # the run's id, its directory's name
                root:Path=ROOT, # the checkout, which paths are shown relative to
               )->nbformat.NotebookNode:
    "A run's page: outputs as papermill left them (nothing re-run), hidden cells and `#|` dropped, paths shortened"
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    cells = [c for c in nb.cells if not (c is first and re.match(r"# \S", c.source))]  # the page has its own title
    head = (f"# Latest training run\n\n```{{container}} nbdocs-description\nRun `{run_id}`: the training notebook as "
            f"`iris-classifier train` executed it, with the outputs it had then; this site does not run it again."
            f"\n```\n\nThe same notebook, run afresh with its default parameters, is the "
            f"[Model training](model_training.ipynb) page.")
    shown = [c for c in (_run_cell(c, root) for c in cells) if c is not None]
    out = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(head)] + shown, metadata=copy.deepcopy(KERNEL))
    nbformat.validate(out)
    return out

def source_problems(nb, # a converted notebook
                    forbidden:list[str], # strings no cell may contain, such as local paths
                   )->list[str]:
    "Cells whose source shows a forbidden string: a run's sources were written by papermill, not reviewed in git"
    return [f"cell {i} shows the local path {p} in its source"
            for i, c in enumerate(nb.cells) for p in forbidden if p in c.source]

def render_run(nb_path:Path, # `runs/<run id>/05_model_training.ipynb`
               root:Path=ROOT, # the checkout, which paths are shown relative to
              )->dict: # as `render_page` returns it, for the page `latest_run`
    "The page of a training run's executed notebook, and what must not be published from it"
    from fastcore.nbio import read_nb
    nb, run_id = read_nb(nb_path), nb_path.parent.name
    page = run_to_myst(nb, run_id, root)
    forbidden = sorted(set(local_paths() + run_paths(nb)), key=len, reverse=True)
    problems = output_problems(page, forbidden) + source_problems(page, forbidden)
    return dict(page="latest_run", title="Latest training run", nb=nbformat.writes(page), readme=None,
                problems=[f"latest training run {run_id}: {p}" for p in problems])

## README

class _Table(HTMLParser):
    "Collect the rows of the first HTML table (pandas' `_repr_html_`) as lists of cell texts"
    def __init__(self):
        super().__init__()
        self.rows, self.cell, self.header_rows, self.in_head = [], None, 0, False
    def handle_starttag(self, tag, attrs):
        if tag == "thead": self.in_head = True
        elif tag == "tr": self.rows.append([])
        elif tag in ("td", "th"): self.cell = ""
    def handle_endtag(self, tag):
        if tag == "thead": self.in_head = False
        elif tag == "tr" and self.in_head: self.header_rows += 1
        elif tag in ("td", "th") and self.cell is not None: self.rows[-1].append(self.cell.strip()); self.cell = None
    def handle_data(self, data):
        if self.cell is not None: self.cell += data

def html_table_to_md(html:str)->str|None: # a GitHub-flavoured table, or None if `html` has no table
    "Convert a pandas HTML table to markdown (an index name row is folded into the header)"
    if "<table" not in html: return None
    t = _Table()
    t.feed(html)
    head, rows = t.rows[:max(t.header_rows, 1)], t.rows[max(t.header_rows, 1):]
    header = [next((r[i] for r in head if i < len(r) and r[i]), "") for i in range(max(map(len, t.rows)))]
    esc = lambda row: "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
    return "\n".join([esc(header), "|" + "---|" * len(header), *map(esc, rows)])

_re_rellink = re.compile(r"\]\((?![\w+.-]+:|/|#)([^)\s]+)\)")

def readme_links(md:str, nbdir:str)->str:
    "Make relative links (notebooks, images) work from README.md, above `nbdir`: `](a.ipynb)` -> `](nbs/a.ipynb)`"
    return _re_rellink.sub(lambda m: f"]({nbdir}/{m[1]})", md)

def _readme_output(o)->str:
    if o.get("output_type") == "stream":
        return f"```\n{_text(o['text']).rstrip()}\n```" if o.get("name") == "stdout" else ""
    data = o.get("data", {})
    if any(k.startswith("image/") for k in data):
        raise ValueError("README.md cannot show images: index.ipynb should not plot")
    if "text/markdown" in data: return _re_linked.sub(r"\1", _re_srclink.sub("", _text(data["text/markdown"]))).strip()
    if table := html_table_to_md(_text(data.get("text/html", ""))): return table
    return f"```\n{_text(data.get('text/plain', '')).rstrip()}\n```" if "text/plain" in data else ""

def to_readme(nb, # processed index notebook
              source:str="nbs/index.ipynb", # named in the header comment
             )->str:
    "README.md as `nbdev-readme` would write it: prose, code, and outputs as markdown (doc links unlinked)"
    from nbdev.processors import insert_warning
    fm, nbdir = frontmatter(nb), Path(source).parent.as_posix()
    parts = [f"# {fm.get('title', '')}",
             f"<!-- WARNING: THIS FILE WAS AUTOGENERATED from {source} by tools/build_docs.py! DO NOT EDIT! -->"]
    if fm.get("description"): parts.append(f"> {fm['description']}")
    for cell in nb.cells[1 if fm else 0:]:
        if cell.cell_type == "markdown" and cell.source.strip() != insert_warning.content:
            parts.append(readme_links(_re_linked.sub(r"\1", cell.source.strip()), nbdir))
        elif cell.cell_type == "code":
            show_doc, code = split_options(cell)
            if not show_doc and code.strip(): parts.append(f"```python\n{code.strip()}\n```")
            parts += [s for s in map(_readme_output, cell.get("outputs", [])) if s]
    return "\n\n".join(p for p in parts if p) + "\n"

## Module source pages

def source_page(py:Path, # the module file
                module:str, # its path as shown, such as `iris_classifier/core.py`
                nb_name:str, # the notebook it is exported from
                page:str, # that notebook's page
                title:str, # and its title
               )->str: # a MyST page
    "A page showing `py` highlighted, with `L-<n>` line anchors for `show_doc`'s source links"
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer
    fmt = HtmlFormatter(linenos="inline", lineanchors="L", anchorlinenos=True, wrapcode=True)
    html = highlight(py.read_text(), PythonLexer(), fmt)
    return (f"---\nhtml_theme.sidebar_secondary.remove: true\n---\n# {module}\n\n"
            f"Exported by nbdev from <a href=\"../nbs/{nb_name}\" download>nbs/{nb_name}</a>, "
            f"which documents it: [{title}](../{page}.ipynb). Edit the notebook, not this file.\n\n"
            f"```{{raw}} html\n<div class=\"highlight-python notranslate nbdocs-module\">{html}</div>\n```\n")
