"""Can a window open here? Asked before Qt loads: Qt aborts the process (exit 134) when its
platform plugin cannot start, with a hint that names the wrong library. No Qt import here."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

CLI_HINT = "the `studio` command line works without one, see `studio --help`"
# Platforms that need no display server: the person chose them on purpose.
HEADLESS = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay")
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)
_SONAME = re.compile(r"^(lib.+?)\.so\.(\d+)")


def display_problem(env: Mapping[str, str] | None = None, platform: str = sys.platform
                    ) -> str | None:
    """A one-line reason the window cannot open, or None when it should."""
    env = os.environ if env is None else env
    if not platform.startswith("linux"):
        return None
    chosen = env.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0].strip()
    if chosen in HEADLESS:
        return None
    x11, wayland = env.get("DISPLAY", ""), env.get("WAYLAND_DISPLAY", "")
    if not x11 and not wayland:
        return f"no display: {CLI_HINT} (or set QT_QPA_PLATFORM=offscreen)"
    if chosen.startswith("wayland") or (wayland and chosen != "xcb"):
        return None  # Qt picks its Wayland plugin, which reports problems without aborting
    if not x11:
        return f"QT_QPA_PLATFORM=xcb needs an X display and DISPLAY is not set; {CLI_HINT}"
    missing = missing_xcb_libraries()
    if missing:
        packages = " ".join(debian_package(lib) for lib in missing)
        return (f"the window needs system libraries that are missing ({', '.join(missing)}); "
                f"on Debian/Ubuntu: sudo apt install {packages}; {CLI_HINT}")
    if not x_server_reachable(x11):
        return f"cannot reach the display {x11!r} (is the X server running?); {CLI_HINT}"
    return None


def missing_xcb_libraries() -> list[str]:
    """Shared libraries that Qt's X11 plugin needs and the system lacks (via ``ldd``)."""
    plugin = _qt_plugin("platforms/libqxcb.so")
    ldd = shutil.which("ldd")
    if plugin is None or ldd is None:
        return []  # cannot tell: let Qt try
    try:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=10,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_ldd_missing(out)


def parse_ldd_missing(ldd_output: str) -> list[str]:
    return list(dict.fromkeys(_NOT_FOUND.findall(ldd_output)))


def debian_package(soname: str) -> str:
    """The Debian package that ships a library, by Debian's naming rule: libxcb-icccm.so.4
    is in libxcb-icccm4, libxkbcommon-x11.so.0 in libxkbcommon-x11-0."""
    match = _SONAME.match(soname)
    if match is None:
        return soname
    name, major = match.group(1).lower(), match.group(2)
    return f"{name}-{major}" if name[-1].isdigit() else f"{name}{major}"


def x_server_reachable(display: str, timeout_s: float = 1.0) -> bool:
    """Whether anything listens where ``DISPLAY`` points (a local socket or TCP 6000+n)."""
    match = re.match(r"^([^:]*):(\d+)(?:\.\d+)?$", display)
    if match is None:
        return True  # a form this check does not know: let Qt try
    host, number = match.group(1), int(match.group(2))
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        for address in (path, "\0" + path):  # the file, or Linux's abstract socket
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout_s)
                try:
                    s.connect(address)
                    return True
                except OSError:
                    continue
        return False
    try:
        socket.create_connection((host, 6000 + number), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _qt_plugin(relative: str) -> Path | None:
    try:
        import importlib.util

        spec = importlib.util.find_spec("PySide6")  # finds the package without loading Qt
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        candidate = Path(base) / "Qt" / "plugins" / relative
        if candidate.exists():
            return candidate
    return None
