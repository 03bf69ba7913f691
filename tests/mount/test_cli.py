"""The command line itself: --help, --version."""

import re

from pgtest import default_bin
from mvtest import run


def test_help():
    r = run([default_bin(), "--help"], timeout=15, check=False)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "db=" in out and "store=" in out, out


def test_version():
    r = run([default_bin(), "--version"], timeout=15, check=False)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert re.search(r"\d+\.\d+(\.\d+)?", out), out
