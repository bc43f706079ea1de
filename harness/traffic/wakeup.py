"""The open-loop pump's wake-up, to the microsecond: a Linux timerfd armed at
an absolute CLOCK_MONOTONIC time and watched by the event loop.

Why: the event loop's own timers tick in whole milliseconds (libuv rounds
every delay to 1 ms and sleeps in ``epoll_wait`` with a millisecond timeout),
so a request due between two ticks waited up to a millisecond for the next
one: the send lag's floor was 0-1 ms, its p99 about 1.0 ms at any rate
(docs/engine.md). A timerfd fires at the nanosecond asked (an hrtimer, no
rounding) and wakes the same ``epoll_wait``.

One timer holds one pending callback (the pump has one next wake-up):
``call_at`` re-arms it, ``cancel`` forgets the callback. Linux only (ctypes,
libc); ``PreciseTimer.create`` returns None elsewhere and the engine keeps the
loop's timers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from typing import Callable

CLOCK_MONOTONIC = 1
TFD_TIMER_ABSTIME = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = getattr(os, "O_CLOEXEC", 0o2000000)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec),
                                         ctypes.POINTER(_Itimerspec)]
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


class PreciseTimer:
    """A one-shot timer on ``loop`` at absolute monotonic nanoseconds."""

    __slots__ = ("_loop", "_fd", "_spec", "_value", "_settime", "_fn", "fired")

    def __init__(self, loop, fd: int):
        self._loop = loop
        self._fd = fd
        self._spec = _Itimerspec()  # it_interval stays 0: one-shot
        self._value = self._spec.it_value
        self._settime = _LIBC.timerfd_settime
        self._fn: Callable[[], None] | None = None
        self.fired = 0  # callbacks run (for tests and the lag trace)
        loop.add_reader(fd, self._on_readable)

    @classmethod
    def create(cls, loop) -> "PreciseTimer | None":
        """A timer on ``loop``, or None where there is no timerfd (not Linux) or
        the loop cannot watch one (it has no ``add_reader``)."""
        if _LIBC is None or not hasattr(loop, "add_reader"):
            return None
        fd = _LIBC.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            return None
        try:
            return cls(loop, fd)
        except (NotImplementedError, OSError, ValueError):
            os.close(fd)
            return None

    def call_at(self, at_ns: int, fn: Callable[[], None]) -> "PreciseTimer":
        """Run ``fn`` once at monotonic time ``at_ns`` (at once if it is past),
        replacing what was pending. Returns the timer (its ``cancel`` undoes this)."""
        if at_ns < 1:
            at_ns = 1  # an it_value of 0 would disarm the timer
        self._fn = fn
        value = self._value
        value.tv_sec, value.tv_nsec = divmod(at_ns, 1_000_000_000)
        if self._settime(self._fd, TFD_TIMER_ABSTIME, self._spec, None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_settime: {os.strerror(err)}")
        return self

    def cancel(self) -> None:
        """Forget the pending callback. The timer may still expire: that
        wake-up reads the timerfd and runs nothing (cheaper than a disarm on
        the hot path, where a cancel is followed by a new ``call_at``)."""
        self._fn = None

    def _on_readable(self) -> None:
        try:
            os.read(self._fd, 8)  # the expiry count; clears the readiness
        except BlockingIOError:  # re-armed after it expired: nothing is due yet
            return
        fn, self._fn = self._fn, None
        if fn is not None:
            self.fired += 1
            fn()

    def close(self) -> None:
        if self._fd < 0:
            return
        self._fn = None
        try:
            self._loop.remove_reader(self._fd)
        finally:
            os.close(self._fd)
            self._fd = -1
