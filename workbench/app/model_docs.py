"""Help → About the loaded models: the reports that say how the codec and the SAE were made and measured
(`resources.model_documents`), one tab each, rendered from their markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTabWidget, QTextBrowser, QVBoxLayout, QWidget

from workbench.core.resources import model_documents


class ModelDocsDialog(QDialog):
    def __init__(self, codec: Any, sae_folder: Path | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About the loaded models")
        self.resize(900, 700)
        self.tabs = QTabWidget()
        for title, text, folder in model_documents(codec, sae_folder):
            view = QTextBrowser()
            view.setOpenExternalLinks(False)
            if folder is not None:
                view.setSearchPaths([str(folder)])  # links between the reports (probes-eval.md …) open here
            view.setMarkdown(text)
            self.tabs.addTab(view, title)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.tabs, 1)
        lay.addWidget(buttons)

    def titles(self) -> list[str]:
        return [self.tabs.tabText(i) for i in range(self.tabs.count())]
