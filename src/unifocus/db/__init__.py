"""The database: the runtime pool and write path, migrations, the embedded server."""

import logging

# Alembic logs a line per plugin when it is first imported (seven INFO lines on every command,
# --help too, and in every worker's JSON log at start-up). Set here, before `db.migrate`, the
# one module that imports it, so no import order has to be kept there.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
