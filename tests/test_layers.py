"""The layering rules: core stays free of Qt and the GUI stays free of torch."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def lint_imports_cmd() -> list[str]:
    beside = Path(sys.executable).with_name("lint-imports")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("lint-imports")
    if found is None:
        pytest.skip("import-linter is not installed (pip install -e .[test])")
    return [found]


@pytest.mark.timeout(120)
def test_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [*lint_imports_cmd(), "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout
    assert " 0 broken" in result.stdout


def modules_after_import(*modules: str) -> set[str]:
    """The top-level packages loaded by a fresh interpreter that imports ``modules``."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {list(modules)!r}:\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted({k.split('.')[0] for k in sys.modules})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=110,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.timeout(120)
def test_core_and_jobs_import_no_torch_and_no_qt() -> None:
    loaded = modules_after_import(
        "studio.core.registry", "studio.core.datasets.catalog", "studio.jobs.runner")
    assert "studio" in loaded
    assert not loaded & {"torch", "PySide6", "pyqtgraph", "shiboken6"}


@pytest.mark.timeout(120)
def test_gui_app_imports_no_torch_and_no_onnxruntime() -> None:
    if importlib.util.find_spec("studio.gui") is None or \
            importlib.util.find_spec("studio.gui.app") is None:
        pytest.skip("studio.gui.app does not exist yet")
    loaded = modules_after_import("studio.gui.app")
    assert not loaded & {"torch", "onnxruntime"}
