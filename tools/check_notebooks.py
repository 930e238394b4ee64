"""Check that the notebooks are clean (no outputs, execution counts or editor metadata: they are committed
without), that `iris_classifier/` is exactly their `nbdev-export`, and that the notebooks the package ships
(training and monitoring) are the ones in `nbs/`.

Both run in a scratch copy of the project, so the check never changes your files and also catches modules
the export would create that are missing here, and stale modules it would no longer create. The package's
data (templates, static files, the OpenAPI document, the shipped notebooks) is not generated: it is copied
into the scratch package as it is.
Usage: .venv/bin/python tools/check_notebooks.py
"""
import filecmp, shutil, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `iris-classifier train` and `monitor` run the package's copies
SHIPPED_NOTEBOOKS = ["05_model_training.ipynb", "14_monitoring.ipynb"]
BIN = Path(sys.executable).parent
IGNORE = ["__pycache__", ".ipynb_checkpoints", "_proc"]

def differences(a:Path, b:Path)->list[str]:
    "Relative paths that differ between the trees `a` and `b`, or exist in only one"
    cmp, out = filecmp.dircmp(a, b, ignore=IGNORE), []
    def walk(c, prefix):
        out.extend(f"{prefix}{n}" for n in c.left_only + c.right_only + c.diff_files + c.funny_files)
        for name, sub in c.subdirs.items(): walk(sub, f"{prefix}{name}/")
    walk(cmp, "")
    return out

def _ignore_modules(d, names):
    "What the copy of the package leaves out: the exported modules (export writes them again) and caches"
    return [n for n in names if n.endswith(".py") and n != "__init__.py"] + IGNORE

def main()->int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shutil.copy(ROOT/"pyproject.toml", tmp)
        shutil.copytree(ROOT/"nbs", tmp/"nbs", ignore=shutil.ignore_patterns(*IGNORE))
        shutil.copytree(ROOT/"iris_classifier", tmp/"iris_classifier", ignore=_ignore_modules)
        notebooks = sorted(str(p.relative_to(tmp)) for p in (tmp/"nbs").glob("*.ipynb"))
        # what `make clean-nbs` and `make export` run
        for cmd in [["jupyter", "nbconvert", "--clear-output", "--inplace", "--log-level=WARN", *notebooks],
                    ["nbdev-clean"], ["nbdev-export"]]:
            subprocess.run([BIN/cmd[0], *cmd[1:]], cwd=tmp, check=True)
        problems = [f"notebook not clean: nbs/{p} (run `make clean-nbs`)" for p in differences(ROOT/"nbs", tmp/"nbs")]
        problems += [f"library differs from the notebooks' export: iris_classifier/{p} (run `make export`)"
                     for p in differences(ROOT/"iris_classifier", tmp/"iris_classifier")]
        shipped = ROOT/"iris_classifier"/"notebooks"
        problems += [f"iris_classifier/notebooks/{nb} differs from nbs/{nb} (run `make export`)"
                     for nb in SHIPPED_NOTEBOOKS
                     if not (shipped/nb).is_file() or not filecmp.cmp(tmp/"nbs"/nb, shipped/nb, shallow=False)]
    print("\n".join(problems) or "notebooks clean; iris_classifier/ equals their export",
          file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0

if __name__ == "__main__": sys.exit(main())
