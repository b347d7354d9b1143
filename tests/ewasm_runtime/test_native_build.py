"""The install builds the native host interface wherever a C compiler is, and what runs
is built from the source in the tree (an optional extension that fails to compile leaves
the install green, so only this test tells)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ewasm_runtime import native


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
def test_the_extension_is_built_and_bound_wherever_a_c_compiler_is():
    assert native.available(), native.why_unavailable()
    from ewasm_runtime import _native

    source = Path(native.__file__).with_name("_native.c")
    assert Path(_native.__file__).stat().st_mtime >= source.stat().st_mtime, \
        "the extension is older than _native.c: run pip install -e . again"


def test_ewasm_native_0_selects_the_reference_eei(monkeypatch):
    from ewasm_runtime import Runtime, frame

    monkeypatch.setenv(native.ENV, "0")
    runtime = Runtime()
    assert runtime.native is False and runtime.frame_type is frame.Frame
