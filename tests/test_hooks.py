"""`make hooks` in a fresh clone, then a commit as a person makes one after editing a notebook outside `make lab`:
the notebook still has outputs and editor metadata, and the package was not exported. The pre-commit hooks
clean and export and stop the commit; committed again, the repository holds a clean notebook and the package
that matches it. `git diff` of a notebook then goes through nbdev's driver, cell by cell."""
import json, os, shutil, subprocess
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
GIT_USER = ["-c", "user.name=Test", "-c", "user.email=test@localhost"]

def run(*cmd, cwd:Path, check=True)->subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
                          env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"})
    if check: assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc

@pytest.fixture(scope="module")
def clone(tmp_path_factory)->Path:
    "The checkout's files (as they are now) in a new repository, with its own .venv and `make hooks` run"
    clone = tmp_path_factory.mktemp("clone")
    files = run("git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", cwd=ROOT).stdout.split("\0")
    for f in filter(None, files):
        if (ROOT/f).is_file():
            (clone/f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT/f, clone/f)
    if (ROOT/"uv.lock").exists(): shutil.copy(ROOT/"uv.lock", clone)  # the same versions, no new resolution
    (clone/".tools").symlink_to(ROOT/".tools")  # only uv lives there
    run("git", "init", "-q", "-b", "main", cwd=clone)
    run("git", "add", "-A", cwd=clone)
    run("git", *GIT_USER, "commit", "-q", "--no-verify", "-m", "start", cwd=clone)
    run("make", "--no-print-directory", "hooks", cwd=clone)
    return clone

def edit_like_another_editor(nb_path:Path):
    "Change an exported docstring and save the notebook with outputs, execution counts and editor metadata"
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "code":
            cell.update(execution_count=3, outputs=[dict(output_type="stream", name="stdout", text=["ran\n"])])
            cell["metadata"]["scrolled"] = True
        if '"Hex SHA-256 of `data`"' in src:
            cell["source"] = src.replace("Hex SHA-256 of `data`", "Hex SHA-256 digest of `data`")
    nb["metadata"]["language_info"] = {"name": "python"}
    nb_path.write_text(json.dumps(nb, indent=2))

def test_hooks_are_installed(clone):
    assert (clone/".git"/"hooks"/"pre-commit").is_file()
    driver = run("git", "config", "merge.jupyternotebook.driver", cwd=clone).stdout.strip()
    assert driver == ".venv/bin/nbdev-merge %O %A %B %P"
    attrs = run("git", "check-attr", "merge", "diff", "--", "nbs/00_core.ipynb", cwd=clone).stdout
    assert attrs.count("jupyternotebook") == 2

def test_a_commit_cleans_and_exports(clone):
    edit_like_another_editor(clone/"nbs"/"00_core.ipynb")
    run("git", "add", "nbs/00_core.ipynb", cwd=clone)
    first = run("git", *GIT_USER, "commit", "-m", "docstring", cwd=clone, check=False)
    said = first.stdout + first.stderr
    assert first.returncode != 0 and said.count("files were modified by this hook") == 2, said  # cleaned, and exported
    nb = json.loads((clone/"nbs"/"00_core.ipynb").read_text())
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None for c in nb["cells"])
    assert "language_info" not in nb["metadata"]
    assert "Hex SHA-256 digest of `data`" in (clone/"iris_classifier"/"core.py").read_text()
    run("git", "add", "-A", cwd=clone)
    run("git", *GIT_USER, "commit", "-q", "-m", "docstring", cwd=clone)
    assert run("git", "status", "--porcelain", cwd=clone).stdout == ""
    run(".venv/bin/python", "tools/check_notebooks.py", cwd=clone)

def test_git_diff_shows_notebook_cells(clone):
    path = clone/"nbs"/"00_core.ipynb"
    path.write_text(path.read_text().replace("## Hashes", "## Hashes and digests"))
    diff = run("git", "diff", "nbs/00_core.ipynb", cwd=clone).stdout
    run("git", "checkout", "nbs/00_core.ipynb", cwd=clone)
    # a word diff of the cell
    assert diff.startswith("# nbs/00_core.ipynb") and "{+ and digests+}" in diff and '"source": [' not in diff, diff
