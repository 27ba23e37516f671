"""Connection strings: the database a URL names, for a TCP server and for the embedded one
(whose URL carries its socket directory in the query)."""

from __future__ import annotations

import pytest

from unifocus.db.urls import database_name, with_database, with_user


@pytest.mark.parametrize(("url", "name"), [
    ("postgresql://postgres@127.0.0.1:5432/test", "test"),
    ("postgresql://u:p@db.example:6432/unifocus?sslmode=require", "unifocus"),
    ("postgresql://postgres:@/unifocus_test_ab12?host=/tmp/unifocus-test-pg-x1/pgdata", "unifocus_test_ab12"),
])
def test_the_database_name_is_the_urls_path_not_its_last_slash(url: str, name: str) -> None:
    assert database_name(url) == name
    assert database_name(with_database(url, "other")) == "other"
    assert database_name(with_user(url, "unifocus_app", None)) == name
