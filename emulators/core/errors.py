"""The error base every emulator's ``exceptions.py`` builds on."""

from __future__ import annotations


class LocalEngineError(Exception):
    """Base of every error the local emulators raise on purpose: the message names the problem and the fix."""


class EndpointError(LocalEngineError):
    """A local endpoint could not start or be found; the message says why and what to do."""
