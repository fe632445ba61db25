"""Ctrl-C during a wait ends the wait, also when the KeyboardInterrupt was swallowed where it landed."""
import os
import signal

import pytest

from factories import swallowed_sigint
from harness.interrupts import kept_interrupts

pytestmark = pytest.mark.usefixtures("default_sigint")  # tests/conftest.py: skipped outside the main thread


def test_a_swallowed_interrupt_is_raised_again_by_the_check():
    with pytest.raises(KeyboardInterrupt):
        with kept_interrupts() as check:
            swallowed_sigint()
            check()
            pytest.fail("the check let the interrupt go")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back


def test_a_wait_that_ends_after_a_swallowed_interrupt_still_raises_it():
    with pytest.raises(KeyboardInterrupt):
        with kept_interrupts():
            swallowed_sigint()


def test_without_a_sigint_the_check_passes_and_the_handler_is_given_back():
    with kept_interrupts() as check:
        check()
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_stays_ignored():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with kept_interrupts() as check:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGINT)
        check()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_nested_blocks_leave_the_outer_handler_in_place():
    with kept_interrupts():
        outer = signal.getsignal(signal.SIGINT)
        with kept_interrupts():
            assert signal.getsignal(signal.SIGINT) is outer
        assert signal.getsignal(signal.SIGINT) is outer
