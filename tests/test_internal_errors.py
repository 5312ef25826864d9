"""Only ``KalamError``s leave the engine: a bug surfaces as ``InternalError``
with the original exception attached, and the notebook shows its traceback."""

from __future__ import annotations

import pytest

from engine import Engine, KalamError
from engine.errors import InternalError
from engine.sql import dispatch


def _broken(*args, **kwargs):
    raise ZeroDivisionError("a bug")


def test_an_engine_bug_reaches_the_caller_as_internal_error_with_the_original(
    tmp_path, monkeypatch
):
    with Engine.open(tmp_path, background_jobs=False) as eng:
        eng.execute("CREATE TABLE t (id INT PRIMARY KEY)")
        monkeypatch.setitem(dispatch.HANDLERS, dispatch.st.Query, _broken)
        with pytest.raises(InternalError) as caught:
            eng.execute("SELECT * FROM t")
        assert isinstance(caught.value, KalamError)
        assert caught.value.code == "INTERNAL"
        assert isinstance(caught.value.original, ZeroDivisionError)
        assert "ZeroDivisionError: a bug" in caught.value.message


def test_the_magic_shows_an_internal_errors_original_traceback(tmp_path, monkeypatch):
    from kalam_magic.errors import KalamCellError

    try:
        try:
            _broken()
        except ZeroDivisionError as exc:
            raise InternalError("Internal error (ZeroDivisionError: a bug)") from exc
    except InternalError as err:
        shown = "".join(KalamCellError(err, position=None, source_line=None)._render_traceback_())
    assert "Traceback" in shown and "_broken" in shown and "ZeroDivisionError: a bug" in shown
