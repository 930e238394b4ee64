"""Build the docs site and README.md from the notebooks, without Quarto: `make docs`.

1. Run every notebook in `nbs/` the way `nbdev-test` does, each in a scratch directory with the artifacts
   variables pointing there too (so nothing lands in your `artifacts/`), two at a time.
2. Process them with nbdev's docs processors and convert them for MyST-NB (see `tools/nbdocs.py`).
3. Render them with Sphinx (configuration in `docs/conf.py`) into `docs/_site`, with warnings as errors:
   one page per notebook named as nbdev names it, index first; the module sources as highlighted pages
   and the notebooks themselves are shipped in the site, so "source" links stay inside it.
4. Write README.md from `nbs/index.ipynb` (or, with `--check-readme`, fail if README.md differs).

If there are training runs (`artifacts/runs/<run id>/`, or `--runs DIR`), the newest run's executed notebook
becomes one more page, "Latest training run", shown as `iris-classifier train` left it: it is not run again.

Anything a reader should not see (text on stderr, such as warnings; local paths; nbdev's warnings), and any
file the build wrote into the project besides the site, fails the build after the site is written, so it
can still be inspected.

Since step 1 is what `nbdev-test` does, the build is also the notebooks' test: `make test` runs it with
`--test`, which builds into `artifacts/docs-site`, checks README.md instead of writing it, and records what
the site was built from; `tests/test_docs.py` then checks that site instead of running every notebook
again, and rebuilds it only when the notebooks, the package, these tools or the environment have changed.
Usage: .venv/bin/python tools/build_docs.py [--out DIR] [--check-readme] [--runs DIR] [--test]
"""
import argparse, hashlib, importlib.metadata, json, multiprocessing, os, re, shutil, sys, tempfile, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/"tools"))
import nbdocs

SITE = ROOT/"artifacts"/"docs-site"  # the site `make test` builds and the docs tests check
RECORD = SITE.with_name("docs-site.json")  # what that site was built from, and the build's problems
INPUTS = ["nbs", "tools", "docs", "pyproject.toml", "README.md"]  # what a build reads, with the package
WATCHED = ["artifacts", "nbs", "docs", "_proc"]  # where a build must write nothing but its site
# training runs, as `iris-classifier train` writes them
RUNS = Path(os.environ.get("IRIS_ARTIFACTS_DIR") or ROOT/"artifacts")/"runs"
# pictures the notebooks' markdown shows, beside them in `nbs/` (README.md links them there too)
IMAGES = "images"
SKIP = {"__pycache__", ".ipynb_checkpoints", "_proc", "_site"}  # caches and generated material

def toctrees(guides:list[str], chapters:list[str], sources:list[str])->str:
    "The index's hidden toctrees, one per part of the navigation: the guides, the chapters, the module sources"
    tree = lambda caption, names: f"```{{toctree}}\n:hidden:\n:caption: {caption}\n\n" + "\n".join(names) + "\n```"
    parts = [("Guides", guides), ("Chapters", chapters), ("Module source", sources)]
    return "\n\n".join(tree(caption, names) for caption, names in parts if names)

def guide_order(index, # the index page, converted
                guides:list[str], # the pages that are not chapters
               )->list[str]:
    "The guides in the order the index (and so README.md) links them, then any others by name"
    markdown = "\n".join(c.source for c in index.cells if c.cell_type == "markdown")
    linked = re.findall(r"\]\(([\w.-]+)\.ipynb", markdown)
    return sorted(guides, key=lambda g: (linked.index(g) if g in linked else len(linked), g))

def write_sources(results:list[dict], nbs:list[Path], src:Path, extra:Path):
    "Fill Sphinx's source directory with the pages, module source pages, and the site's raw notebooks"
    import nbformat
    (src/"src").mkdir(parents=True)
    (extra/"nbs").mkdir(parents=True)
    if (images := nbs[0].parent/IMAGES).is_dir(): shutil.copytree(images, src/IMAGES)  # as pages link them
    sources, chapters = [], []
    for nb_path, res in zip(nbs, results):
        shutil.copy(nb_path, extra/"nbs"/nb_path.name)
        if mod := nbdocs.module_of(nb_path):
            page = nbdocs.source_page(ROOT/mod, mod, nb_path.name, res["page"], res["title"])
            (src/"src"/f"{Path(mod).stem}.md").write_text(page)
            sources.append(f"src/{Path(mod).stem}")
            chapters.append(res["page"])
    nbs = {res["page"]: nbformat.reads(res["nb"], as_version=4) for res in results}
    known = set().union(*map(nbdocs.labels, nbs.values()))
    for res in results:
        nb = nbs[res["page"]]
        for cell in nb.cells:
            if cell.cell_type == "markdown": cell.source = nbdocs.drop_dead_links(cell.source, known, list(nbs))
        if res["page"] == "index":
            others = [r["page"] for r in results if r["page"] != "index" and r["page"] not in chapters]
            guides = guide_order(nb, others)
            nb.cells.append(nbformat.v4.new_markdown_cell(toctrees(guides, chapters, sources)))
        nbformat.write(nb, src/f"{res['page']}.ipynb")

def sphinx(src:Path, out:Path, work:Path, extra:Path)->int: # Sphinx's exit status
    "Build the HTML site from `src` into `out`, warnings as errors"
    from sphinx.cmd.build import build_main
    if out.exists() and any(out.iterdir()) and not (out/".buildinfo").exists():
        raise SystemExit(f"{out} is not a Sphinx build; not replacing it")
    html = work/"site"/"html"  # MyST-NB writes a `jupyter_execute` folder beside the output: keep it in `work`
    status = build_main(["-b", "html", "-q", "-W", "--keep-going", "-c", str(ROOT/"docs"), "-d", str(work/"doctrees"),
                         "-D", f"html_extra_path={extra}", str(src), str(html)])
    if html.exists():
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(html, out)
    return status or int(not html.exists())

def snapshot(skip:Path)->dict[str, float]:
    "Modification times of the files under `WATCHED`, except those under `skip`"
    return {str(f.relative_to(ROOT)): f.stat().st_mtime for d in WATCHED for f in (ROOT/d).rglob("*")
            if f.is_file() and not f.is_relative_to(skip)}

def build(out:Path, readme:Path|None=None, check_readme:Path|None=None,
          runs:Path|None=None, # training runs: the newest one's executed notebook becomes a page
         )->list[str]: # problems; empty when all is well
    "Build the site into `out`; write the README to `readme`, or compare it with `check_readme`"
    from nbdev.config import get_config
    nbs, before = nbdocs.notebooks(get_config().nbs_path), snapshot(out)
    problems = []
    with tempfile.TemporaryDirectory(prefix="iris-docs-") as tmp:
        tmp = Path(tmp)
        workers = max(1, min(len(nbs), os.cpu_count() or 1))
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(nbdocs.render_page, nb, tmp/"run"/nb.stem) for nb in nbs]
        results = []
        for nb, f in zip(nbs, futures):
            try: results.append(f.result())
            except Exception as e: problems.append(f"{nb.name}: {e}")  # the site is built without its page
        nbs = [nb for nb in nbs if nbdocs.page_name(nb) in {r["page"] for r in results}]
        if run := nbdocs.latest_run(runs): results.append(nbdocs.render_run(run))
        for r in results: problems += r["problems"]
        write_sources(results, nbs, tmp/"src", tmp/"extra")
        if sphinx(tmp/"src", out, tmp, tmp/"extra"): problems.append("Sphinx reported warnings or errors (above)")
    text = next((r["readme"] for r in results if r["readme"]), None)
    if text is None: problems.append("no index.ipynb: README.md not generated")
    elif check_readme and (not check_readme.exists() or check_readme.read_text() != text):
        problems.append(f"{check_readme.name} does not match nbs/index.ipynb: run `make docs` and commit README.md")
    elif readme: readme.write_text(text)
    after = snapshot(out)
    return problems + [f"the build wrote {f} into the project" for f in sorted(after) if before.get(f) != after[f]]

def inputs()->str: # a SHA-256 digest
    "What a build's result depends on: the files under `INPUTS` and the package's, Python, installed distributions"
    from nbdev.config import get_config
    h = hashlib.sha256(sys.version.encode())
    # A set: with the project root on sys.path (`python -m pytest`), the checkout's egg-info lists the package again.
    dists = {f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()}
    for d in sorted(dists): h.update(d.encode())
    for top in map(ROOT.joinpath, INPUTS + [get_config().lib_path.name]):
        for f in sorted(top.rglob("*")) if top.is_dir() else [top]:
            rel = f.relative_to(ROOT)
            if f.is_file() and not SKIP & set(rel.parts): h.update(f"{rel}\0".encode() + f.read_bytes())
    return h.hexdigest()

def site_for_tests(reuse:bool=True)->list[str]: # the build's problems
    "Build `SITE` and check README.md; with `reuse`, keep the site if `RECORD` shows it was built from today's inputs"
    digest = inputs()
    if reuse and SITE.exists() and RECORD.exists() and (rec := json.loads(RECORD.read_text()))["inputs"] == digest:
        return rec["problems"]
    problems = build(SITE, check_readme=ROOT/"README.md")
    RECORD.write_text(json.dumps({"inputs": digest, "problems": problems}, indent=1))
    return problems

def main(argv:list[str]|None=None)->int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT/"docs"/"_site",
                   help="where to write the site (default: docs/_site)")
    p.add_argument("--check-readme", action="store_true",
                   help="fail if README.md differs from nbs/index.ipynb instead of writing it")
    p.add_argument("--runs", type=lambda s: Path(s) if s else None, default=RUNS,
                   help="training runs; the newest one's executed notebook becomes the page "
                   "'Latest training run' (default: artifacts/runs; none there, no page; --runs '' for none)")
    p.add_argument("--test", action="store_true",
                   help=f"the notebooks' test: build into {SITE.relative_to(ROOT)} with --check-readme and record the "
                   "inputs for pytest (never with a run's page: the tests check the same site on every machine)")
    args = p.parse_args(argv)
    start, readme = time.perf_counter(), ROOT/"README.md"
    if args.test:
        args.out, problems = SITE, site_for_tests(reuse=False)
    else: problems = build(args.out.resolve(), None if args.check_readme else readme,
                           readme if args.check_readme else None, args.runs)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file()) if args.out.exists() else 0
    print(f"docs: {args.out} ({size/2**20:.1f} MiB) in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    if problems: print("docs: problems to fix:\n  " + "\n  ".join(problems), file=sys.stderr)
    return 1 if problems else 0

if __name__ == "__main__": sys.exit(main())
