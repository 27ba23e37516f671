"""Apply or roll back the Alembic migrations (as the owner role)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from unifocus.db.urls import sqlalchemy_url
from unifocus.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(owner_url: str, settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["sqlalchemy_url"] = sqlalchemy_url(owner_url)
    cfg.attributes["app_role"] = settings.app_db_role
    cfg.attributes["app_password"] = settings.app_db_password
    return cfg


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def upgrade(owner_url: str, settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(owner_url, settings), revision)


def downgrade(owner_url: str, settings: Settings, revision: str = "base") -> None:
    command.downgrade(alembic_config(owner_url, settings), revision)
