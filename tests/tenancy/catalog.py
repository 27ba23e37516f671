"""The catalog gate: what PostgreSQL's own catalog must say about the schema.

Each check returns a list of human-readable violations (empty = the property holds), so the
same checks run on the test database and on a database that went through a migration
round-trip.
"""

from __future__ import annotations

import psycopg

# Tables that legitimately hold no tenant data (and so have no tenant_id). Adding one here is
# a design decision: such a table is outside row-level security.
GLOBAL_TABLES = {"alembic_version"}


def _true(conn: psycopg.Connection, sql: str, params: tuple) -> bool:
    row = conn.execute(sql, params).fetchone()
    return bool(row and row[0])


def tenant_tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        """
        SELECT c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
        ORDER BY 1
        """
    ).fetchall()
    return [r[0] for r in rows]


def tables_without_tenant_id(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                          AND a.attname = 'tenant_id' AND NOT a.attisdropped)
        ORDER BY 1
        """
    ).fetchall()
    return [r[0] for r in rows if r[0] not in GLOBAL_TABLES]


def rls_violations(conn: psycopg.Connection, role: str) -> list[str]:
    """RLS enabled and forced on every tenant table, and every permissive policy that applies
    to the runtime role filters (and checks) on app.tenant_id."""
    out: list[str] = []
    rows = conn.execute(
        """
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relname = ANY(%s)
        """,
        (tenant_tables(conn),),
    ).fetchall()
    for table, enabled, forced in rows:
        if not enabled:
            out.append(f"{table}: row-level security is not enabled")
        if not forced:
            out.append(f"{table}: row-level security is not forced (the owner would bypass it)")
    policies = conn.execute(
        """
        SELECT c.relname, p.polname, p.polcmd, p.polpermissive,
               pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public'
          AND (0 = ANY(p.polroles) OR (SELECT oid FROM pg_roles WHERE rolname = %s) = ANY(p.polroles))
        """,
        (role,),
    ).fetchall()
    scoped = {table for table, *_ in policies}
    for table in tenant_tables(conn):
        if table not in scoped:
            out.append(f"{table}: no policy applies to {role} (it would see nothing, or a later "
                       "permissive policy would decide)")
    for table, name, cmd, permissive, using, check in policies:
        if not permissive:
            continue
        if cmd in ("*", "r", "w", "d") and "app.tenant_id" not in (using or ""):
            out.append(f"{table}.{name}: USING ({using}) does not filter on app.tenant_id")
        if cmd in ("*", "a", "w") and check is not None and "app.tenant_id" not in check:
            out.append(f"{table}.{name}: WITH CHECK ({check}) does not check app.tenant_id")
    return out


def runtime_role_violations(conn: psycopg.Connection, role: str) -> list[str]:
    out: list[str] = []
    attrs = conn.execute(
        "SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = %s", (role,)
    ).fetchone()
    if attrs is None:
        return [f"role {role} does not exist"]
    superuser, bypassrls, createrole = attrs
    if superuser:
        out.append(f"{role} is a superuser")
    if bypassrls:
        out.append(f"{role} has BYPASSRLS")
    if createrole:
        out.append(f"{role} has CREATEROLE (it could grant itself the owner's role)")
    owned = conn.execute(
        """
        WITH me AS (SELECT oid FROM pg_roles WHERE rolname = %(r)s)
        SELECT 'table ' || c.relname FROM pg_class c WHERE c.relowner = (SELECT oid FROM me)
        UNION ALL
        SELECT 'function ' || p.proname FROM pg_proc p WHERE p.proowner = (SELECT oid FROM me)
        UNION ALL
        SELECT 'schema ' || n.nspname FROM pg_namespace n WHERE n.nspowner = (SELECT oid FROM me)
        """,
        {"r": role},
    ).fetchall()
    out += [f"{role} owns {what}" for (what,) in owned]
    owners = conn.execute(
        """
        SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
        """
    ).fetchall()
    for (owner,) in owners:
        if owner != role and _true(conn, "SELECT pg_has_role(%s, %s, 'MEMBER')", (role, owner)):
            out.append(f"{role} is a member of the table owner {owner}")
    for privilege in ("UPDATE", "DELETE", "TRUNCATE"):
        if _true(conn, "SELECT has_table_privilege(%s, 'public.audit_log', %s)", (role, privilege)):
            out.append(f"{role} has {privilege} on audit_log")
    if _true(conn, "SELECT has_any_column_privilege(%s, 'public.audit_log', 'UPDATE')", (role,)):
        out.append(f"{role} has UPDATE on a column of audit_log")
    return out


def key_violations(conn: psycopg.Connection) -> list[str]:
    """tenant_id leads every primary key, unique constraint, unique index and foreign key (on
    both sides) of every tenant table: the layout Citus needs to distribute by tenant_id."""
    out: list[str] = []
    tables = tenant_tables(conn)
    constraints = conn.execute(
        """
        SELECT c.conrelid::regclass::text, c.conname, c.contype,
               (SELECT attname FROM pg_attribute WHERE attrelid = c.conrelid AND attnum = c.conkey[1]),
               c.confrelid::regclass::text,
               (SELECT attname FROM pg_attribute WHERE attrelid = c.confrelid AND attnum = c.confkey[1])
        FROM pg_constraint c
        WHERE c.contype IN ('p', 'u', 'f') AND c.conrelid::regclass::text = ANY(%s)
        """,
        (tables,),
    ).fetchall()
    kinds = {"p": "primary key", "u": "unique constraint", "f": "foreign key"}
    for table, name, kind, first, ref_table, ref_first in constraints:
        if first != "tenant_id":
            out.append(f"{table}: {kinds[kind]} {name} starts with {first}, not tenant_id")
        if kind == "f" and ref_first != "tenant_id":
            out.append(f"{table}: foreign key {name} references {ref_table} by {ref_first} first, not tenant_id")
    indexes = conn.execute(
        """
        SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text,
               (SELECT attname FROM pg_attribute WHERE attrelid = i.indrelid AND attnum = i.indkey[0])
        FROM pg_index i
        WHERE i.indisunique AND i.indrelid::regclass::text = ANY(%s)
        """,
        (tables,),
    ).fetchall()
    for table, index, first in indexes:
        if first != "tenant_id":
            out.append(f"{table}: unique index {index} starts with {first or 'an expression'}, not tenant_id")
    return out


def gate_violations(conn: psycopg.Connection, role: str) -> list[str]:
    return (
        [f"{t}: table has no tenant_id" for t in tables_without_tenant_id(conn)]
        + rls_violations(conn, role)
        + runtime_role_violations(conn, role)
        + key_violations(conn)
    )
