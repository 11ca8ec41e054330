"""The Jinja2 sandbox templates run in, with a budget per render.

Jinja's ``SandboxedEnvironment`` keeps a template away from Python
internals but lets it spend as much CPU and memory as it likes: nested
``range()`` loops, ``10 ** (10 ** 7)``, ``'x' * 10 ** 10`` or a namespace
value doubled in a loop all run on the event loop. Here every place a
template can do unbounded work is metered against one ``Budget`` per render:

- iterations of ``range()`` and every call (filters, methods, macros) spend
  steps from a shared allowance, and the wall clock is checked as they go;
- ``*``, ``**``, ``+`` and ``%`` are intercepted and refused when the
  result would be huge;
- integer arguments to filters and calls (widths, counts) are capped, and
  so are strings stored in a ``namespace()``.

Going over budget raises ``BudgetExceeded``; the caller turns it (and any
other exception) into that delivery's failure.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import operator
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

import jinja2
from jinja2.runtime import Context
from jinja2.sandbox import MAX_RANGE, SandboxedEnvironment
from jinja2.utils import Namespace

__all__ = [
    "MAX_SECONDS",
    "MAX_SIZE",
    "MAX_STEPS",
    "Budget",
    "BudgetExceeded",
    "BudgetedSandbox",
    "spending",
]

MAX_STEPS: Final = 100_000  # loop iterations + calls, per render
MAX_SECONDS: Final = 0.1  # wall clock per render
MAX_SIZE: Final = 100_000  # characters / items of one intermediate value
_MAX_INT_BITS: Final = 4096
_CLOCK_EVERY: Final = 255  # check the clock once per this many steps (a mask)
_HUGE_FORMAT_WIDTH = re.compile(r"\d{6,}")

_BINOPS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "*": operator.mul,
    "**": operator.pow,
    "+": operator.add,
    "%": operator.mod,
}


class BudgetExceeded(jinja2.TemplateError):
    """A template used more than its share of steps, time or memory."""


class Budget:
    """What one render may still spend."""

    __slots__ = ("deadline", "steps")

    def __init__(self, steps: int = MAX_STEPS, seconds: float = MAX_SECONDS) -> None:
        self.steps = steps
        self.deadline = time.perf_counter() + seconds

    def spend(self, steps: int = 1) -> None:
        self.steps -= steps
        if self.steps < 0:
            raise BudgetExceeded(f"template exceeded its budget of {MAX_STEPS} steps")
        if not self.steps & _CLOCK_EVERY and time.perf_counter() > self.deadline:
            raise BudgetExceeded(f"template ran longer than {MAX_SECONDS * 1000:g} ms")


_current: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "eventbus_template_budget", default=None
)


def _spend(steps: int = 1) -> None:
    budget = _current.get()
    if budget is not None:
        budget.spend(steps)


@contextlib.contextmanager
def spending(budget: Budget) -> Iterator[Budget]:
    """Meter everything rendered inside the block against ``budget``."""
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple | dict) else 0


def _check_size(value: Any, what: str) -> Any:
    if _size(value) > MAX_SIZE:
        raise BudgetExceeded(f"{what} would hold more than {MAX_SIZE} items")
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        raise BudgetExceeded(f"{what} is a number of more than {_MAX_INT_BITS} bits")
    return value


def _check_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SIZE:
            raise BudgetExceeded(f"argument {value} is larger than {MAX_SIZE}")
        if _size(value) > MAX_SIZE:
            raise BudgetExceeded(f"an argument holds more than {MAX_SIZE} items")


def _binop_result_too_big(symbol: str, left: Any, right: Any) -> bool:
    """Whether ``left <symbol> right`` would build a huge value (decided before computing)."""
    if symbol == "*":
        sequence, count = (left, right) if isinstance(right, int) else (right, left)
        return isinstance(count, int) and _size(sequence) * max(count, 0) > MAX_SIZE
    if symbol == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            return right * math.log2(abs(left)) > _MAX_INT_BITS
        return False
    if symbol == "+":
        return _size(left) + _size(right) > MAX_SIZE
    # "%": printf-style formatting with a huge width or precision
    return isinstance(left, str) and bool(_HUGE_FORMAT_WIDTH.search(left))


class _BudgetedRange:
    """``range()`` whose every iteration spends a step (``len()`` and ``in`` still work)."""

    __slots__ = ("_numbers",)

    def __init__(self, *args: int) -> None:
        self._numbers = range(*args)
        if len(self._numbers) > MAX_RANGE:
            # the sandbox's own limit and message
            raise OverflowError(
                f"Range too big. The sandbox blocks ranges larger than {MAX_RANGE}."
            )

    def __len__(self) -> int:
        return len(self._numbers)

    def __contains__(self, value: object) -> bool:
        return value in self._numbers

    def __iter__(self) -> Iterator[int]:
        for number in self._numbers:
            _spend()
            yield number


class _BoundedNamespace(Namespace):
    """``namespace()`` whose values cannot grow without bound inside a loop."""

    def __setitem__(self, name: str, value: Any) -> None:
        _spend()
        super().__setitem__(name, _check_size(value, f"namespace value {name!r}"))


def _metered(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)  # keeps jinja's pass_context/pass_environment marks
    def metered_filter(*args: Any, **kwargs: Any) -> Any:
        _spend()
        # args[0] (or [1] with a context) is the value being filtered, not a width or count.
        _check_arguments(args[2:] if _passes_argument(function) else args[1:], kwargs)
        return _check_size(function(*args, **kwargs), "a filter's result")

    return metered_filter


def _passes_argument(function: Callable[..., Any]) -> bool:
    return getattr(function, "jinja_pass_arg", None) is not None


class BudgetedSandbox(SandboxedEnvironment):
    """``SandboxedEnvironment`` whose loops, calls and operators spend a ``Budget``."""

    intercepted_binops = frozenset(_BINOPS)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _BudgetedRange
        self.globals["namespace"] = _BoundedNamespace
        self.filters = {name: _metered(f) for name, f in self.filters.items()}

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _spend()
        if _binop_result_too_big(operator, left, right):
            raise BudgetExceeded(f"the result of {operator!r} would be too large")
        return _BINOPS[operator](left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None and _HUGE_FORMAT_WIDTH.search(value.__self__):
            raise BudgetExceeded("a format width or precision is too large")
        return wrapped

    def call(
        __self,  # the base class's (name-mangled) signature
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        _spend()
        if __obj is not _BudgetedRange:  # range() has the sandbox's own limit
            _check_arguments(args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        return _check_size(result, "a call's result")
