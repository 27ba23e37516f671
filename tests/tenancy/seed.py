"""One row in every tenant table, inserted as the owner, with values that are easy to spot
in a response body (every id and name is unique to the seeded tenant)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import psycopg

# (table, INSERT) in foreign-key order. A new tenant table needs a line here, or the RLS tests
# say so (they must see real rows of two tenants to prove anything).
SEED_SQL: list[tuple[str, str]] = [
    ("tenants",
     "INSERT INTO tenants (tenant_id, name, timezone) VALUES (%(tenant)s, %(tenant_name)s, 'UTC')"),
    ("employees",
     "INSERT INTO employees (tenant_id, id, first_name, last_name, external_id, email) "
     "VALUES (%(tenant)s, %(employee)s, %(first_name)s, %(last_name)s, %(external_id)s, %(email)s)"),
    ("users",
     "INSERT INTO users (tenant_id, id, email, role, employee_id, subject) "
     "VALUES (%(tenant)s, %(user)s, %(email)s, 'manager', %(employee)s, %(subject)s)"),
    ("schedules",
     "INSERT INTO schedules (tenant_id, id, employee_id, name, start_date, end_date) "
     "VALUES (%(tenant)s, %(schedule)s, %(employee)s, %(schedule_name)s, '2026-01-05', '2026-12-31')"),
    ("shifts",
     "INSERT INTO shifts (tenant_id, id, schedule_id, day_of_week, start_time, end_time) "
     "VALUES (%(tenant)s, %(shift)s, %(schedule)s, 1, '09:00', '17:00')"),
    ("punches",
     "INSERT INTO punches (tenant_id, id, employee_id, type, ts, source, shift_id, shift_date) "
     "VALUES (%(tenant)s, %(punch)s, %(employee)s, 'clock_in', '2026-01-05T14:10:00Z', 'api', "
     "%(shift)s, '2026-01-05')"),
    ("exceptions",
     "INSERT INTO exceptions (tenant_id, id, employee_id, type, shift_id, shift_date, punch_id, dedupe_key) "
     "VALUES (%(tenant)s, %(exception)s, %(employee)s, 'late_arrival', %(shift)s, '2026-01-05', "
     "%(punch)s, %(external_id)s)"),
    ("idempotency_records",
     "INSERT INTO idempotency_records (tenant_id, user_id, method, path, key, fingerprint, status_code, "
     "expires_at) VALUES (%(tenant)s, %(user)s, 'POST', '/api/employees', %(external_id)s, "
     "decode('00', 'hex'), 201, now() + interval '1 day')"),
    ("audit_log",
     "INSERT INTO audit_log (tenant_id, user_id, action, entity, entity_id, changes, employee_id, "
     "seq, created_at, prev_hash, hash) VALUES (%(tenant)s, %(user)s, 'created', 'Employee', %(employee)s, "
     "'{}', %(employee)s, 0, now(), decode('', 'hex'), decode('', 'hex'))"),
]
SEEDED_TABLES = [table for table, _ in SEED_SQL]


@dataclass
class Seeded:
    """The ids and the distinctive strings of one seeded tenant."""

    tenant: uuid.UUID
    values: dict[str, object] = field(default_factory=dict)

    def __getitem__(self, key: str) -> object:
        return self.values[key]

    def id_of(self, resource: str) -> uuid.UUID | None:
        value = self.values.get(resource)
        return value if isinstance(value, uuid.UUID) else None

    def secrets(self) -> list[str]:
        """Every value that must never appear in an answer to another tenant."""
        return [str(v) for k, v in self.values.items() if k != "subject"] + [str(self.tenant)]


def seed_values(tenant: uuid.UUID) -> Seeded:
    mark = uuid.uuid4().hex[:10]
    ids = {name: uuid.uuid4() for name in ("employee", "user", "schedule", "shift", "punch", "exception")}
    values: dict[str, object] = {
        "tenant": tenant,
        **ids,
        "tenant_name": f"Tenant-{mark}",
        "first_name": f"First{mark}",
        "last_name": f"Last{mark}",
        "external_id": f"EXT-{mark}",
        "email": f"person-{mark}@example.com",
        "schedule_name": f"Schedule-{mark}",
        "subject": str(ids["user"]),
    }
    return Seeded(tenant, values)


def seed(conn: psycopg.Connection, tenant: uuid.UUID, *, with_tenant_row: bool = True) -> Seeded:
    """Insert one row per tenant table for `tenant` (as whoever `conn` is)."""
    seeded = seed_values(tenant)
    for table, sql in SEED_SQL:
        if table == "tenants" and not with_tenant_row:
            continue
        conn.execute(sql, seeded.values)
    return seeded


def tenant_rows(conn: psycopg.Connection, tables: list[str], tenant: uuid.UUID) -> dict[str, list[tuple]]:
    """All rows of one tenant, per table, in a stable order (for before/after comparisons)."""
    return {
        table: conn.execute(
            f"SELECT * FROM {table} AS t WHERE tenant_id = %s ORDER BY t::text",  # noqa: S608
            (tenant,),
        ).fetchall()
        for table in tables
    }
