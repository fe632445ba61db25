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


LINELESS = '''
import sys, types


def lineless():
    """A traceback entry on an instruction past the frame's code: CPython gives it no line number,
    as it does an interrupt that lands between a line's instructions."""
    return types.TracebackType(None, sys._getframe(1), 10**6, -1)


def test_interrupted():
    raise KeyboardInterrupt().with_traceback(lineless())


def test_interrupted_while_handling():
    try:
        raise ValueError("first").with_traceback(lineless())
    except ValueError:
        raise KeyboardInterrupt
'''


@pytest.mark.parametrize("test", ["test_interrupted", "test_interrupted_while_handling"])
def test_a_ctrl_c_without_a_line_number_still_ends_the_session_as_interrupted(pytester, test):
    """pytest's report of such an interrupt fails with a TypeError (an internal error, exit status 1);
    the plugin leaves the line-less entries out, so the session ends interrupted (2) and says so."""
    pytester.makepyfile(test_lineless=LINELESS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"test_lineless.py::{test}")
    assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()[-2000:] + result.stderr.str()[-2000:]
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    assert "TypeError" not in result.stdout.str() + result.stderr.str()
