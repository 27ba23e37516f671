"""Connection strings: the owner's (migrations) and the runtime role's (the service)."""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

from unifocus.settings import Settings


def sqlalchemy_url(url: str) -> str:
    """The same server for SQLAlchemy's sync psycopg driver (Alembic)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme in ("postgres", "postgresql") else url


def with_user(url: str, user: str, password: str | None) -> str:
    """`url` with its credentials replaced, keeping host, port, database and query."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    cred = quote(user) + (":" + quote(password) if password else "")
    return urlunsplit((parts.scheme, f"{cred}@{host}", parts.path, parts.query, parts.fragment))


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def database_name(url: str) -> str:
    """The database a URL names: its path, not the last `/` of the whole string (an embedded
    server's URL carries a socket directory in its query, `?host=/tmp/.../pgdata`)."""
    return urlsplit(url).path.lstrip("/")


def app_url(settings: Settings, owner_url: str) -> str:
    """The runtime role's URL: explicit, else the owner's server with the app role's login."""
    if settings.app_database_url:
        return settings.app_database_url
    return with_user(owner_url, settings.app_db_role, settings.app_db_password)
