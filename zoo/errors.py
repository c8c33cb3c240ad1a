"""Exceptions that carry a message a user can act on."""

from __future__ import annotations


class EmozooError(Exception):
    """Base class of every error emozoo raises on purpose."""


class AudioError(EmozooError):
    """A file or array could not be used as speech audio."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class UnknownModelError(EmozooError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateModelError(EmozooError):
    pass


class BrokenPluginError(EmozooError):
    """A model whose plugin registered it wrongly (not an EmotionModel subclass, abstract methods left, ...)."""


class ModelFileError(EmozooError):
    """A saved model directory or ONNX file is missing, incomplete or corrupt."""


class DatasetError(EmozooError):
    pass
