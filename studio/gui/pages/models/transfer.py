"""Models in and out: the page's Import / Export menu, and the one transfer running (a job:
import, export, Hub pull or push) shown in a bar with its progress and Cancel. The work runs
in a child process (``studio.jobs.transfer``): the GUI never loads onnx, torch or the Hub
client. A Hub token goes to that process's environment, never into the stored job spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QWidget,
)

from studio.core.events import Done, Event, Failed, Log, Progress
from studio.gui.job_bridge import JobBridge
from studio.gui.pages.evaluation.plain import PlainElided
from studio.gui.pages.models.ask import show_message
from studio.gui.pages.models.text import size_text

TITLES = {"model-import": "Import", "model-export": "Export", "model-pull": "Pull from the Hub",
          "model-push": "Push to the Hub"}


class TransferBar(QWidget):
    """What runs, how far it is, and Cancel; hidden when nothing runs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = PlainElided("")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.cancel_btn = QPushButton("Cancel")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.text, 1)
        row.addWidget(self.progress)
        row.addWidget(self.cancel_btn)
        self.hide()

    def busy(self, text: str) -> None:
        self.text.setText(text)
        self.progress.setRange(0, 0)
        self.cancel_btn.setEnabled(True)
        self.show()

    def step(self, event: Progress) -> None:
        if event.total:
            # per mille: byte counts of big files overflow QProgressBar's int
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * min(event.current / event.total, 1.0)))
            self.progress.setFormat(f"{size_text(int(event.current))} of "
                                    f"{size_text(int(event.total))}"
                                    if event.stage == "download" else "%p%")
        if event.message:
            self.text.setText(event.message[:1].upper() + event.message[1:] + "…")


class Transfers(QObject):
    def __init__(self, page: Any) -> None:
        super().__init__(page)
        self.page = page
        self.ws = page.ws
        self.bar = TransferBar()
        self.bar.cancel_btn.clicked.connect(self.cancel)
        self.job: JobBridge | None = None
        self.kind: str | None = None
        self.cancelling = False
        self.pending: list[Path] = []
        self.menu = QMenu(page)
        self.menu.setToolTipsVisible(True)
        self.actions: dict[str, Any] = {}
        for key, text, slot in (
                ("import", "Import a model file…", self.choose_import_file),
                ("import_folder", "Import a model folder…", self.choose_import_folder),
                ("export_bundle", "Export as a bundle (.zip)…", lambda: self.choose_export(
                    "bundle")),
                ("export_onnx", "Export as plain ONNX…", lambda: self.choose_export("onnx")),
                ("export_triton", "Export to a Triton/KServe repository…",
                 lambda: self.choose_export("triton")),
                ("pull", "Pull from the Hugging Face Hub…", self.ask_pull),
                ("push", "Push to the Hugging Face Hub…", self.ask_push)):
            if key in ("export_bundle", "pull"):
                self.menu.addSeparator()
            self.actions[key] = self.menu.addAction(text, slot)
        self.actions["import"].setToolTip("ONNX, safetensors, a PyTorch checkpoint (weights "
                                          "only) or a Model Studio bundle; or drop it on "
                                          "this page")
        self.actions["import_folder"].setToolTip("A Hugging Face folder (config.json and "
                                                 "safetensors), or ONNX with external data")
        self.actions["export_bundle"].setToolTip("Manifest, files and card in one .zip that "
                                                 "imports elsewhere with its lineage")
        self.actions["export_triton"].setToolTip("The selected versions as NAME/N/model.onnx "
                                                 "and NAME/config.pbtxt entries")

    @property
    def running(self) -> bool:
        return self.job is not None

    def update_actions(self) -> None:
        refs = self.page.table.selected_refs()
        one = len(refs) == 1
        for key, act in self.actions.items():
            needs = {"export_bundle": one, "export_onnx": one, "push": one,
                     "export_triton": bool(refs)}.get(key, True)
            act.setEnabled(needs and not self.running)

    # -- asking -----------------------------------------------------------------------------

    def choose_import_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.page, "Import a model", str(Path.home()),
            "Models (*.onnx *.safetensors *.pt *.pth *.bin *.zip);;All files (*)")
        if path:
            self.import_paths([Path(path)])

    def choose_import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.page, "Import a model folder",
                                                  str(Path.home()))
        if folder:
            self.import_paths([Path(folder)])

    def choose_export(self, how: str) -> None:
        refs = self.page.table.selected_refs()
        if not refs:
            return
        if how == "triton":
            dest = QFileDialog.getExistingDirectory(
                self.page, "Triton/KServe model repository (a folder; entries are added)",
                str(Path.home()))
        else:
            suffix = ".zip" if how == "bundle" else ".onnx"
            name = refs[0].replace(":", "-") + suffix
            dest, _ = QFileDialog.getSaveFileName(
                self.page, f"Export {refs[0]}", str(Path.home() / name),
                f"{'Bundle' if how == 'bundle' else 'ONNX'} (*{suffix})")
        if dest:
            self.export(how, Path(dest), refs)

    def ask_pull(self) -> None:
        from studio.gui.pages.models.hub_dialogs import PullDialog

        dialog = PullDialog(self.page)
        dialog.accepted.connect(lambda: self.pull(**dialog.values()))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.page.dialog = dialog

    def ask_push(self) -> None:
        from studio.gui.pages.models.hub_dialogs import PushDialog

        refs = self.page.table.selected_refs()
        if len(refs) != 1:
            return
        dialog = PushDialog(refs[0], self.page)
        dialog.accepted.connect(lambda: self.push(refs[0], **dialog.values()))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.page.dialog = dialog

    # -- doing ------------------------------------------------------------------------------

    def import_paths(self, paths: list[Path]) -> None:
        """Import each of ``paths`` in turn (a file, a folder, a bundle)."""
        self.pending.extend(paths)
        if not self.running:
            self._next_import()

    def _next_import(self) -> None:
        if self.pending and not self.running:
            path = self.pending.pop(0)
            self._start("model-import", {"path": str(path), "name": None},
                        f"Importing {path.name}")

    def export(self, how: str, dest: Path, refs: list[str]) -> bool:
        what = ", ".join(refs)
        return self._start("model-export", {"format": how, "refs": refs, "dest": str(dest)},
                           f"Exporting {what} to {dest}")

    def pull(self, repo_id: str, revision: str | None = None, name: str | None = None,
             token: str | None = None) -> bool:
        return self._start("model-pull", {"repo_id": repo_id, "revision": revision,
                                          "name": name}, f"Pulling {repo_id} from the Hub",
                           {"HF_TOKEN": token} if token else None)

    def push(self, ref: str, repo_id: str, private: bool = True, revision: str | None = None,
             token: str | None = None) -> bool:
        return self._start("model-push", {"ref": ref, "repo_id": repo_id, "private": private,
                                          "revision": revision},
                           f"Pushing {ref} to {repo_id}", {"HF_TOKEN": token} if token else None)

    def cancel(self) -> None:
        """Stop the transfer: an import, export or pull stops at its next step and keeps
        nothing; a push is one Hub commit, so its process is ended."""
        self.pending.clear()
        if self.job is None:
            return
        self.cancelling = True
        self.bar.cancel_btn.setEnabled(False)
        self.bar.text.setText("Cancelling…")
        if self.kind == "model-push":
            self.job.kill()
        else:
            self.job.stop()

    def _start(self, kind: str, spec: dict[str, Any], what: str,
               env: dict[str, str] | None = None) -> bool:
        if self.running:
            self.page.notice.emit("Another import or export is running; wait for it or "
                                  "cancel it")
            return False
        try:
            job = JobBridge(self.ws, kind, spec, self, env=env)
            job.events.connect(self._on_events)
            job.finished.connect(lambda final: self._on_finished(kind, spec, final))
            job.start()
        except Exception as exc:  # no process could start: said, and the queue goes on
            show_message(self.page, TITLES[kind], f"Could not start: {exc}")
            QTimer.singleShot(0, self._next_import)
            return False
        self.job, self.kind, self.cancelling = job, kind, False
        self.bar.busy(what + "…")
        self.update_actions()
        return True

    def _on_events(self, batch: list[Event]) -> None:
        for event in batch:
            if isinstance(event, Progress):
                self.bar.step(event)
            elif isinstance(event, Log) and not self.cancelling:
                self.bar.text.setText(event.message)

    def _on_finished(self, kind: str, spec: dict[str, Any], final: Done | Failed) -> None:
        cancelled = self.cancelling
        self.job = self.kind = None
        self.cancelling = False
        self.bar.hide()
        self.update_actions()
        title = TITLES[kind]
        if isinstance(final, Done):
            self._done(kind, final.result)
        elif cancelled or final.cancelled:
            self.page.notice.emit(f"{title} cancelled; nothing was kept"
                                  if kind != "model-push" else
                                  "Push cancelled: the Hub takes all of a push in one commit "
                                  "or none of it")
        else:
            what = Path(spec["path"]).name if kind == "model-import" else None
            detail = final.error
            if what:  # the error itself begins with the file's name: say it once
                detail = detail.removeprefix(f"{spec['path']}: ").removeprefix(f"{what}: ")
            head = f"Could not import {what}" if what else f"{title} failed"
            self.page.dialog = show_message(self.page, title, f"{head}:\n{detail}")
            self.page.notice.emit(f"{head}: {detail.splitlines()[0] if detail else ''}")
        QTimer.singleShot(0, self._next_import)

    def _done(self, kind: str, result: dict[str, Any]) -> None:
        if kind in ("model-import", "model-pull"):
            ref = result["version"]
            self.page.notice.emit(f"Registered {ref} ({result.get('kind')})")
            self.page.refresh(select=ref, keep_view=True)
        elif kind == "model-export":
            paths = result.get("paths") or []
            text = (f"Wrote {', '.join(result.get('refs') or [])} to\n" + "\n".join(paths)
                    + f"\n({size_text(result.get('bytes'))})")
            if result.get("format") == "triton" and paths:
                text += ("\n\nServe it with: tritonserver --model-repository "
                         f"{Path(paths[0]).parent}")
            self.page.notice.emit(f"Exported to {paths[0] if paths else '?'}")
            self.page.dialog = show_message(self.page, "Export", text,
                                            QMessageBox.Icon.Information)
        else:
            self.page.notice.emit(f"Pushed {result['ref']} to {result['repo_id']}")
            self.page.dialog = show_message(
                self.page, "Push to the Hub", f"Pushed {result['ref']} to {result['repo_id']}"
                f" in one commit:\n{result['url']}", QMessageBox.Icon.Information)

    def shutdown(self) -> None:
        """The window closes: an import or pull ends and removes what it stored."""
        self.pending.clear()
        if self.job is not None:
            self.job.runner.abandon()
