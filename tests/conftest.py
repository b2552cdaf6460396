"""Shared fixtures: a fresh workspace per test and one CLI-trained model per session."""

import os

# Before anything imports Qt: the GUI tests must never need a display.
os.environ["QT_QPA_PLATFORM"] = "offscreen"

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.core.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parents[1]
PENGUINS = REPO_ROOT / "resources" / "samples" / "penguins.csv"
TRAIN_EPOCHS = 30


def studio_cmd(home: Path | str, *args: str) -> list[str]:
    """The real CLI, as a user runs it, on the workspace ``home``."""
    return [sys.executable, "-m", "studio", "--home", str(home), *args]


def run_studio(home: Path | str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        studio_cmd(home, *args), capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session", autouse=True)
def studio_home_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Point ``STUDIO_HOME`` at a scratch folder so no test touches the user's real data."""
    home = tmp_path_factory.mktemp("studio-home-default")
    previous = os.environ.get("STUDIO_HOME")
    os.environ["STUDIO_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("STUDIO_HOME", None)
    else:
        os.environ["STUDIO_HOME"] = previous


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace.open(tmp_path / "ws")
    yield workspace
    if "db" in workspace.__dict__:  # only close a database that was opened
        workspace.db.close()


@pytest.fixture
def penguins_csv() -> Path:
    assert PENGUINS.is_file(), f"sample data missing: {PENGUINS}"
    return PENGUINS


@pytest.fixture(scope="session")
def trained_home(studio_home_env: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One workspace with the penguins dataset and ``penguins:1``, made through the real CLI.

    Tests that use it must not add datasets or versions to it.
    """
    home = tmp_path_factory.mktemp("trained") / "home"
    imported = run_studio(home, "data", "import", str(PENGUINS))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split(":")[0] == "penguins"  # the summary names the dataset first
    trained = run_studio(home, "train", "penguins", "--target", "species",
                         "--epochs", str(TRAIN_EPOCHS), timeout=240)
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout.splitlines()[0] == "penguins:1"
    return home


@pytest.fixture
def window(qtbot, tmp_path: Path):
    """The app's main window on a fresh workspace, at 1280×800, as a person opens it."""
    from studio.gui.app import create_window

    w = create_window(tmp_path / "ws")
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    w.load()
    yield w
    w.close()


def penguins_workspace(root: Path, families: tuple[str, ...]) -> Path:
    """A workspace at ``root`` with the penguins dataset and one version per family, in
    order (penguins:1, penguins:2, …), trained in this process; closed again."""
    from studio.core.datasets import catalog
    from studio.core.training.pipeline import run
    from studio.core.training.spec import TrainSpec

    ws = Workspace.open(root)
    catalog.import_dataset(ws, PENGUINS)
    for family in families:
        run(ws, TrainSpec(dataset="penguins", target="species", family=family, threads=1),
            lambda _e: None)
    ws.db.close()
    return root


def train_text_and_pictures(ws: Workspace, root: Path) -> None:
    """reviews:1 (word embeddings on text) and shapes:1 (a cnn on 32-pixel pictures) in
    ``ws``, both small and quick; their files written under ``root``."""
    from synthetic import reviews, shapes

    from studio.core.datasets import catalog
    from studio.core.training.pipeline import run
    from studio.core.training.spec import TrainSpec

    reviews(300).to_csv(root / "reviews.csv", index=False)
    catalog.import_dataset(ws, root / "reviews.csv")
    run(ws, TrainSpec(dataset="reviews", target="sentiment", family="embedding", epochs=6,
                      hidden=[32], batch_size=16, learning_rate=1e-2, threads=1),
        lambda _e: None)
    catalog.import_dataset(ws, shapes(root / "img" / "shapes", per_class=30))
    run(ws, TrainSpec(dataset="shapes", target="label", family="cnn", epochs=4, batch_size=16,
                      threads=1, params={"channels": 8},
                      preprocessing={"columns": {"image": {"size": 32}}}), lambda _e: None)


@contextlib.contextmanager
def copied_workspace(template: Path, dest: Path) -> Iterator[Workspace]:
    """A copy of the workspace ``template`` that a test may change."""
    shutil.copytree(template, dest)
    ws = Workspace.open(dest)
    try:
        yield ws
    finally:
        ws.db.close()
