"""Errors that say what went wrong and what to do next.

Every error carries `.message` (what happened) and `.fix` (the next step), so a widget can
show both inline and a learner never has to read a traceback.
"""

from __future__ import annotations

import difflib

from .units import both


class LlamalabError(Exception):
    """Base class: `str(err)` is the message followed by the fix."""

    def __init__(self, message: str, fix: str = ""):
        self.message, self.fix = message, fix
        super().__init__(f"{message}\n→ {fix}" if fix else message)


class UnknownModel(LlamalabError, LookupError):
    def __init__(self, name: str, known: list[str]):
        self.name = name
        self.matches = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.5)
        hint = f"Did you mean {', '.join(self.matches)}? " if self.matches else ""
        super().__init__(
            f"Unknown model {name!r}.",
            f"{hint}`llamalab.models()` lists the catalog; a local folder with a "
            "config.json works too.",
        )


class UnknownScheme(LlamalabError, ValueError):
    def __init__(self, name: str, known: list[str], short: dict[str, str] | None = None):
        self.name = name
        self.matches = difflib.get_close_matches(
            name.lower(), [*known, *(short or {})], n=3, cutoff=0.4
        )
        hint = f"Did you mean {', '.join(self.matches)}? " if self.matches else ""
        names = "; ".join(f"{k} = {v}" for k, v in (short or {}).items())
        super().__init__(
            f"Unknown scheme {name!r}.",
            f"{hint}Known schemes: {', '.join(known)}."
            + (f" Short names: {names}." if names else ""),
        )


class UnknownHardware(LlamalabError, LookupError):
    def __init__(self, name: str, known: list[str]):
        self.matches = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.4)
        hint = f"Did you mean {', '.join(self.matches)}? " if self.matches else ""
        super().__init__(f"Unknown hardware {name!r}.", f"{hint}Known GPUs: {', '.join(known)}.")


class InvalidSetting(LlamalabError, ValueError):
    """A number or option outside what makes sense (negative context, bits=3, ...)."""


class SchemeUnavailable(LlamalabError):
    def __init__(self, scheme: str, device: str, reason: str, alternative: str | None = None):
        self.scheme, self.device, self.reason, self.alternative = (
            scheme,
            device,
            reason,
            alternative,
        )
        fix = (
            f"Try scheme={alternative!r} on {device}."
            if alternative
            else "Pick another scheme or device."
        )
        super().__init__(f"Scheme {scheme!r} cannot run on {device}: {reason}", fix)


def install_extra(extra: str, prefix: str = "") -> str:
    """The command that installs one of llamalab's extras (pyproject.toml), e.g.
    `pip install "llamalab[quant]"`."""
    return f'{prefix}pip install "llamalab[{extra}]"'


class BackendMissing(LlamalabError, ImportError):
    """A package behind one scheme or tool is not installed; `install` is the command (usually an
    extra: `install_extra("quant")`), and from a checkout `pip install -e ".[quant]"` does
    the same."""

    def __init__(self, package: str, install: str, why: str = ""):
        self.package, self.install = package, install
        super().__init__(
            f"The {package} package is not installed{': ' + why if why else ''}.",
            f"Install it with: {install}",
        )


class NotEnoughMemory(LlamalabError, MemoryError):
    def __init__(self, needed: int, available: int, where: str, suggestion: str | None = None):
        self.needed, self.available, self.where, self.suggestion = (
            needed,
            available,
            where,
            suggestion,
        )
        fix = f"Scheme {suggestion!r} is estimated to fit. " if suggestion else ""
        super().__init__(
            f"Estimated {both(needed)} needed but only {both(available)} available on {where}.",
            fix + "Use a smaller scheme or context, free memory, or pass force=True to try anyway.",
        )


class ModelNotCached(LlamalabError):
    def __init__(self, model: str, how: str):
        self.model = model
        super().__init__(
            f"Model {model!r} is not in the local cache and this session is offline.", how
        )


class PromptTooLong(LlamalabError, ValueError):
    def __init__(self, prompt_tokens: int, max_new_tokens: int, limit: int):
        self.prompt_tokens, self.max_new_tokens, self.limit = prompt_tokens, max_new_tokens, limit
        super().__init__(
            f"Prompt is {prompt_tokens} tokens; with max_new_tokens={max_new_tokens} that exceeds "
            f"the model's context of {limit} tokens.",
            f"Shorten the prompt to at most {max(limit - max_new_tokens, 0)} tokens or "
            "lower max_new_tokens.",
        )


class TaskFailed(LlamalabError):
    """Long work (a Task: quantizing, a fine-tuning run, a model server) ended without its result;
    `log_tail` holds the last lines of its log."""

    def __init__(self, message: str, fix: str = "", log_tail: str = ""):
        self.log_tail = log_tail
        super().__init__(message, fix)


class TaskStopped(TaskFailed):
    """The task was stopped (`Task.stop()`, a Stop button, or Ctrl-C while waiting); a subprocess's
    partial output is gone."""
