"""Alembic environment: runs migrations as the owner role over a sync psycopg connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

url = context.config.attributes["sqlalchemy_url"]
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
