"""Ctrl-C that a long wait cannot lose.

Python turns SIGINT into a KeyboardInterrupt wherever the main thread is, and a few places swallow
it: a finalizer (__del__, a weakref callback) prints "Exception ignored" and goes on, and an
extension that polls for signals inside its own wait (Ray's ray.wait does) may consume the signal
and drop the interrupt. Inside `kept_interrupts()` the handler also records the signal, so the
waiting loop's check raises the interrupt again wherever the first one went.

And a Ctrl-C that pytest cannot report: an interrupt that lands on an instruction without a line
number (CPython 3.11+: its traceback entry's tb_lineno is None) makes pytest's report of it fail
with a TypeError, and the session ends as an internal error (exit status 1) instead of interrupted
(2). `reportable` leaves such entries out of the traceback pytest renders."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator


@contextlib.contextmanager
def kept_interrupts() -> Iterator[Callable[[], None]]:
    """A block that waits, given a check to call between its waits: it raises KeyboardInterrupt once a
    SIGINT has come, and the block's end checks once more. Only where SIGINT raises KeyboardInterrupt
    as by default, in the main thread; elsewhere (SIGINT ignored or handled otherwise) nothing changes."""
    received = []

    def handle(signum, frame) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    def check() -> None:
        if received:
            raise KeyboardInterrupt

    own = (threading.current_thread() is threading.main_thread()
           and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if own:
        signal.signal(signal.SIGINT, handle)
    try:
        yield check
        check()
    finally:
        if own:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def reportable(excinfo) -> None:
    """Leave the traceback entries without a line number out of a pytest ExceptionInfo and of the
    exceptions chained to it (their __cause__ and __context__), so pytest's report of it renders;
    every other entry, and the exceptions themselves, stay as they were."""
    from _pytest._code.code import Traceback

    if any(tb.tb_lineno is None for tb in entries(excinfo.tb)):
        head = lined(excinfo.tb)
        excinfo.traceback = Traceback(head) if head is not None else Traceback([])
    seen, chained = {id(excinfo.value)}, [excinfo.value.__cause__, excinfo.value.__context__]
    while chained:
        exc = chained.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        exc.__traceback__ = lined(exc.__traceback__)
        chained += [exc.__cause__, exc.__context__]


def lined(tb):
    """The traceback `tb` without its entries whose tb_lineno is None (relinked in place): its first
    kept entry, or None."""
    kept = [entry for entry in entries(tb) if entry.tb_lineno is not None]
    for entry, after in zip(kept, kept[1:] + [None]):
        entry.tb_next = after
    return kept[0] if kept else None


def entries(tb) -> list:
    out = []
    while tb is not None:
        out.append(tb)
        tb = tb.tb_next
    return out
