"""First launch: where no window can open, one line says why instead of Qt's core dump."""

from __future__ import annotations

import os
import subprocess
import sys

from studio.gui.preflight import debian_package, display_problem, parse_ldd_missing

LDD_WITHOUT_ICCCM = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f26)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxkbcommon-x11.so.0 => not found
\tlibxcb-icccm.so.4 => not found
"""


def test_no_display_is_one_line_and_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run([sys.executable, "-m", "studio", "--home", str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("studio: error: no display")
    assert "studio --help" in lines[0]


def test_an_unreachable_display_is_named():
    problem = display_problem({"DISPLAY": ":87"}, "linux")
    assert problem is not None
    # either the plugin's libraries are missing here, or the display is checked and absent
    assert "':87'" in problem or "sudo apt install" in problem


def test_missing_libraries_are_named_with_their_packages():
    missing = parse_ldd_missing(LDD_WITHOUT_ICCCM)
    assert missing == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxkbcommon-x11.so.0"]
    assert [debian_package(m) for m in missing] == [
        "libxcb-icccm4", "libxcb-keysyms1", "libxkbcommon-x11-0"]
    assert debian_package("libEGL.so.1") == "libegl1"
    assert debian_package("libdbus-1.so.3") == "libdbus-1-3"


def test_a_chosen_headless_platform_or_another_os_is_not_second_guessed():
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({}, "darwin") is None
    assert display_problem({}, "win32") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None


def test_a_wayland_session_is_left_to_qt_unless_xcb_is_forced():
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":87"}, "linux") is None
    forced = display_problem({"WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": "xcb"}, "linux")
    assert forced is not None and "DISPLAY is not set" in forced
