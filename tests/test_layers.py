"""The package's architecture as import-linter checks it, from `[tool.importlinter]` in pyproject.toml: no import
circle among the modules, and every import (lazy ones inside functions included) points down the layers."""
import subprocess, sys
from pathlib import Path

from conftest import ROOT

def test_imports_point_down_the_layers_and_never_in_a_circle():
    lint = Path(sys.executable).parent/"lint-imports"
    proc = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout, proc.stdout
