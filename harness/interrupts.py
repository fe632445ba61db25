"""Ctrl-C that a long wait cannot lose.

Python turns SIGINT into a KeyboardInterrupt wherever the main thread is, and a few places swallow
it: a finalizer (__del__, a weakref callback) prints "Exception ignored" and goes on, and an
extension that polls for signals inside its own wait (Ray's ray.wait does) may consume the signal
and drop the interrupt. Inside `kept_interrupts()` the handler also records the signal, so the
waiting loop's check raises the interrupt again wherever the first one went."""

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
