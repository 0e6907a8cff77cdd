"""A real, throwaway PostgreSQL for the tests (offline/postgres.py): one server per
session, one fresh database per test. Without the binaries the tests that need them
are skipped, saying how to get them."""

from __future__ import annotations

import pytest

from offline.postgres import HOW_TO_GET, PostgresCluster, find_bindir


@pytest.fixture(scope="session")
def postgres_cluster():
    """The session's PostgreSQL server (skipped, with how to get it, where absent)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(HOW_TO_GET)
    cluster = PostgresCluster(bindir)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(postgres_cluster):
    """A fresh, empty PostgreSQL database for one test."""
    return postgres_cluster.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request, tmp_path):
    """``AMIBOT_DB`` for each backend: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "amibot.db")
    return request.getfixturevalue("pg_url")
