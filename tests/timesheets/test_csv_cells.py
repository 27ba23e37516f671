"""CSV injection guard on single cells (pure)."""

from __future__ import annotations

import pytest

from unifocus.timesheets.csv_export import SafeText, render, safe_cell, safe_text


@pytest.mark.parametrize(
    ("raw", "cell"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=x", "'\t=x"),
     ("\r=x", "'\r=x"), ("Ann", "Ann"), ("O'Neil", "O'Neil"), ("a=b", "a=b"), (None, ""), (42, "42")],
)
def test_formula_cells_get_a_leading_apostrophe(raw: object, cell: str) -> None:
    assert safe_cell(raw) == cell


def test_render_neutralises_raw_text_but_not_pre_neutralised_cells_or_counts() -> None:
    text = render([["=evil", safe_text("=evil"), SafeText("ok"), 7, -3]])
    assert text.split("\r\n")[1] == "'=evil,'=evil,ok,7,'-3"
