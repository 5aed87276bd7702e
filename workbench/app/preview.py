"""Audition player: short latent sequences (a feature's top moments, its own sound) played through a second
`PlaybackEngine`, so listening to an example never replaces the clip loaded in the main transport.

The engine is made on the first Play (its decode thread costs nothing until then) for the current codec
and output device, and closed when either changes or the window closes. Only one of the main engine and
this one plays at a time: the window pauses the other (`before_play`), so a device that allows one
stream at a time works too. "No device" follows the window's rule (Play disabled with the reason, or
silent playback when the user turned it on), through `can_play`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from workbench.core.codecs.base import Codec
from workbench.core.playback import PlaybackEngine, PlaybackError


class PreviewPlayer(QObject):
    stateChanged = Signal(str, str)  # engine state ("playing", "ended", "stopped", "error", ...), message
    failed = Signal(str)

    def __init__(self, can_play: Callable[[], tuple[bool, str]], before_play: Callable[[], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.can_play = can_play
        self.before_play = before_play
        self.codec: Codec | None = None
        self.device: str | None = None
        self.use_device = True
        self.engine: PlaybackEngine | None = None
        self.key: Any = None  # what is playing (the caller's tag), None when nothing
        self.stateChanged.connect(self._on_state)

    def set_output(self, codec: Codec | None, device: str | None, use_device: bool) -> None:
        """A new codec or output device: the next Play makes a fresh engine."""
        if codec is self.codec and device == self.device and use_device == self.use_device:
            return
        self.close()
        self.codec, self.device, self.use_device = codec, device, use_device

    @property
    def is_playing(self) -> bool:
        return self.engine is not None and self.engine.is_playing

    def play(self, z: np.ndarray, key: Any = None) -> bool:
        """Play latents `z` [T, D] from the start; False (and `failed` with the reason) if it cannot."""
        ok, reason = self.can_play()
        if not ok:
            self.failed.emit(reason)
            return False
        if self.codec is None:
            self.failed.emit("no codec loaded")
            return False
        try:
            if self.engine is None:
                eng = PlaybackEngine(self.codec, device=self.device, use_device=self.use_device)
                eng.listeners.append(lambda state, msg: self.stateChanged.emit(state, msg))
                self.engine = eng
            self.before_play()
            self.engine.load(np.asarray(z, np.float32))
            self.engine.play()
        except PlaybackError as exc:
            self.key = None
            self.failed.emit(exc.message)
            return False
        self.key = key
        return True

    def stop(self) -> None:
        if self.engine is not None and self.engine.is_playing:
            self.engine.stop()
        self.key = None

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        self.key = None

    def _on_state(self, state: str, message: str) -> None:
        if state in ("ended", "stopped", "error"):
            self.key = None
        if state == "error":
            self.failed.emit(message or "playback stopped")
