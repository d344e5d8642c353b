"""Deprecation helpers for arguments that became keyword-only (issue 16 item 9).

:func:`positional_deprecated` lets a function or constructor whose trailing arguments are now
keyword-only still accept them by position for one release: the extra positional values are
mapped onto their names in the old order, and a ``DeprecationWarning`` names the call and the
arguments to pass by keyword.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from ._shim import REMOVAL_VERSION

__all__ = ["positional_deprecated", "deprecated_alias"]

F = TypeVar("F", bound=Callable[..., Any])


def positional_deprecated(*names: str) -> Callable[[F], F]:
    """Decorator: accept the keyword-only arguments ``names`` by position, with a warning.

    Args:
        names: the keyword-only parameters of the decorated function that used to be positional,
            in their old order (they follow the parameters that are still positional).

    Returns:
        A decorator. The wrapped function keeps its signature; a call that passes ``k`` more
        positional values than the function takes binds them to ``names[:k]`` and emits a
        ``DeprecationWarning`` ``"<module>.<qualname>: passing <names> by position is deprecated
        ..."``. More positional values than ``names`` hold, or a name given both ways, raise
        ``TypeError`` as Python would.
    """

    def decorate(function: F) -> F:
        signature = inspect.signature(function)
        positional = [p for p in signature.parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if any(p.kind == p.VAR_POSITIONAL for p in signature.parameters.values()):
            raise TypeError(f"positional_deprecated: {function.__qualname__} takes *args")
        keyword_only = [p.name for p in signature.parameters.values() if p.kind == p.KEYWORD_ONLY]
        missing = [name for name in names if name not in keyword_only]
        if missing:
            raise TypeError(f"positional_deprecated: {function.__qualname__} has no keyword-only {missing}")
        n_positional = len(positional)
        where = f"{function.__module__}.{function.__qualname__}".replace(".__init__", "")

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) > n_positional:
                extra = args[n_positional:]
                if len(extra) > len(names):
                    raise TypeError(f"{where}() takes at most {n_positional + len(names)} positional arguments "
                                    f"({len(args)} given)")
                moved = names[: len(extra)]
                twice = [name for name in moved if name in kwargs]
                if twice:
                    raise TypeError(f"{where}() got multiple values for argument {twice[0]!r}")
                warnings.warn(
                    f"{where}: passing {', '.join(moved)} by position is deprecated and will be an error in "
                    f"qernel {REMOVAL_VERSION}; pass {', '.join(f'{name}=...' for name in moved)} by keyword",
                    DeprecationWarning, stacklevel=2,
                )
                kwargs.update(zip(moved, extra))
                args = args[:n_positional]
            return function(*args, **kwargs)

        wrapper.__positional_deprecated__ = tuple(names)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def deprecated_alias(new: Callable[..., Any] | type, old_name: str, module: str) -> Callable[..., Any]:
    """A function ``old_name`` that warns and calls ``new`` (a renamed public function)."""
    new_name = f"{new.__module__}.{new.__qualname__}"

    @functools.wraps(new)
    def alias(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(f"{module}.{old_name} is deprecated and will be removed in qernel {REMOVAL_VERSION}: "
                      f"use {new_name}", DeprecationWarning, stacklevel=2)
        return new(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old_name
    alias.__doc__ = f"Deprecated alias of :func:`{new_name}` (removed in qernel {REMOVAL_VERSION})."
    return alias
