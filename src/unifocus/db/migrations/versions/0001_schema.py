"""The whole schema the contract needs: tenancy, RLS, append-only chained audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-29

Rules every table follows (ARCHITECTURE.md, "Tenancy in three layers"):
- `tenant_id` leads every primary, unique and foreign key (indexes serve tenant lookups and
  the layout is ready for Citus distribution by tenant_id);
- row-level security ENABLEd and FORCEd, policy fails closed when no tenant is set;
- `tenant_id` can never change after insert (trigger);
- the runtime role owns nothing and gets only the privileges it needs.
"""

from __future__ import annotations

from alembic import context, op

from unifocus.db.migrations.roles import app_role

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = [
    "tenants",
    "employees",
    "users",
    "schedules",
    "shifts",
    "punches",
    "exceptions",
    "idempotency_records",
    "audit_log",
]

SCHEMA = r"""
CREATE TABLE tenants (
    tenant_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    timezone    text NOT NULL,
    policy      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE employees (
    tenant_id   uuid NOT NULL REFERENCES tenants (tenant_id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    first_name  text NOT NULL,
    last_name   text NOT NULL,
    external_id text,
    email       text,
    timezone    text,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, external_id)
);
CREATE INDEX employees_tenant_created ON employees (tenant_id, created_at DESC, id DESC);

CREATE TABLE users (
    tenant_id   uuid NOT NULL REFERENCES tenants (tenant_id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    email       text NOT NULL,
    role        text NOT NULL CHECK (role IN ('admin', 'manager', 'employee')),
    employee_id uuid,
    active      boolean NOT NULL DEFAULT true,
    subject     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, subject),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id)
);
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email));
CREATE INDEX users_tenant_created ON users (tenant_id, created_at DESC, id DESC);

CREATE TABLE schedules (
    tenant_id   uuid NOT NULL REFERENCES tenants (tenant_id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    employee_id uuid NOT NULL,
    name        text,
    start_date  date NOT NULL,
    end_date    date NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id),
    CHECK (end_date >= start_date)
);
CREATE INDEX schedules_tenant_employee ON schedules (tenant_id, employee_id, start_date);
CREATE INDEX schedules_tenant_created ON schedules (tenant_id, created_at DESC, id DESC);

CREATE TABLE shifts (
    tenant_id   uuid NOT NULL REFERENCES tenants (tenant_id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    schedule_id uuid NOT NULL,
    day_of_week smallint NOT NULL CHECK (day_of_week BETWEEN 1 AND 7),
    start_time  time NOT NULL,
    end_time    time NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, schedule_id) REFERENCES schedules (tenant_id, id)
);
CREATE INDEX shifts_tenant_schedule ON shifts (tenant_id, schedule_id);

CREATE TABLE punches (
    tenant_id       uuid NOT NULL REFERENCES tenants (tenant_id),
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    employee_id     uuid NOT NULL,
    type            text NOT NULL CHECK (type IN ('clock_in', 'clock_out', 'break_start', 'break_end')),
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    device          text,
    client_punch_id text,
    source          text NOT NULL CHECK (source IN ('api', 'device', 'manual')),
    shift_id        uuid,
    shift_date      date,
    voided          boolean NOT NULL DEFAULT false,
    void_reason     text,
    voided_at       timestamptz,
    voided_by       uuid,
    created_by      uuid,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id),
    FOREIGN KEY (tenant_id, shift_id) REFERENCES shifts (tenant_id, id)
);
CREATE UNIQUE INDEX punches_tenant_device_client
    ON punches (tenant_id, (coalesce(device, '')), client_punch_id)
    WHERE client_punch_id IS NOT NULL;
CREATE INDEX punches_tenant_employee_ts ON punches (tenant_id, employee_id, ts);
CREATE INDEX punches_tenant_ts ON punches (tenant_id, ts DESC, id DESC);

CREATE TABLE exceptions (
    tenant_id   uuid NOT NULL REFERENCES tenants (tenant_id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    employee_id uuid NOT NULL,
    type        text NOT NULL CHECK (type IN ('late_arrival', 'early_departure', 'unscheduled_punch',
                                              'missed_punch', 'absence', 'long_break', 'overtime')),
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'approved', 'rejected', 'withdrawn')),
    shift_id    uuid,
    shift_date  date,
    punch_id    uuid,
    -- what "at most once per (employee, type, occurrence or punch)" is keyed on
    dedupe_key  text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_by uuid,
    resolved_at timestamptz,
    note        text,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id),
    FOREIGN KEY (tenant_id, shift_id) REFERENCES shifts (tenant_id, id),
    FOREIGN KEY (tenant_id, punch_id) REFERENCES punches (tenant_id, id)
);
CREATE UNIQUE INDEX exceptions_once
    ON exceptions (tenant_id, employee_id, type, dedupe_key) WHERE status <> 'withdrawn';
CREATE INDEX exceptions_tenant_created ON exceptions (tenant_id, created_at DESC, id DESC);
CREATE INDEX exceptions_tenant_employee ON exceptions (tenant_id, employee_id, created_at DESC);

CREATE TABLE idempotency_records (
    tenant_id    uuid NOT NULL REFERENCES tenants (tenant_id),
    user_id      uuid NOT NULL,
    method       text NOT NULL,
    path         text NOT NULL,
    key          text NOT NULL,
    fingerprint  bytea NOT NULL,
    status_code  integer,
    headers      jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id, method, path, key)
);
CREATE INDEX idempotency_records_expiry ON idempotency_records (tenant_id, expires_at);

CREATE TABLE audit_log (
    tenant_id    uuid NOT NULL REFERENCES tenants (tenant_id),
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    chain        smallint NOT NULL DEFAULT 0,
    seq          bigint NOT NULL,
    user_id      uuid,
    action       text NOT NULL CHECK (action IN ('created', 'updated', 'deleted', 'voided',
                                                 'approved', 'rejected', 'withdrawn')),
    entity       text NOT NULL CHECK (entity IN ('Tenant', 'User', 'Employee', 'Schedule', 'Shift',
                                                 'Punch', 'Exception')),
    entity_id    uuid NOT NULL,
    changes      jsonb NOT NULL,
    employee_id  uuid,
    punch_id     uuid,
    exception_id uuid,
    request_id   text,
    created_at   timestamptz NOT NULL,
    prev_hash    bytea NOT NULL,
    hash         bytea NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, chain, seq)
);
CREATE INDEX audit_log_tenant_created ON audit_log (tenant_id, created_at DESC, id DESC);
CREATE INDEX audit_log_tenant_entity ON audit_log (tenant_id, entity, action, created_at DESC, id DESC);
CREATE INDEX audit_log_tenant_user ON audit_log (tenant_id, user_id, created_at DESC, id DESC);
CREATE INDEX audit_log_tenant_employee ON audit_log (tenant_id, employee_id, created_at DESC, id DESC);

-- tenant_id is fixed at insert: moving a row between tenants is never a legitimate change.
CREATE FUNCTION unifocus_reject_tenant_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'tenant_id of % cannot change', TG_TABLE_NAME USING ERRCODE = 'check_violation';
END $$;

-- The canonical serialisation of an audit entry, hashed with the previous entry's hash.
-- Timestamps are rendered at microsecond precision, the precision the column stores, so a
-- stored entry always re-hashes to the same value.
CREATE FUNCTION unifocus_audit_hash(prev bytea, e audit_log) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(prev || convert_to(
        coalesce(e.tenant_id::text, '~') || '|' || coalesce(e.id::text, '~') || '|' ||
        e.chain::text || '|' || e.seq::text || '|' || coalesce(e.user_id::text, '~') || '|' ||
        e.action || '|' || e.entity || '|' || e.entity_id::text || '|' || e.changes::text || '|' ||
        coalesce(e.employee_id::text, '~') || '|' || coalesce(e.punch_id::text, '~') || '|' ||
        coalesce(e.exception_id::text, '~') || '|' || coalesce(e.request_id, '~') || '|' ||
        to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'UTF8'))
$$;

-- Appends are serialised per (tenant, chain) by a transaction-scoped advisory lock taken
-- here, at insert time, after the business rows: a row lock on the last entry would not
-- serialise appends, and an in-process lock would not serialise several workers. The lock
-- is held to commit, so seq order = commit order within a chain.
CREATE FUNCTION unifocus_audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_seq bigint;
    last_hash bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(
        hashtextextended('unifocus.audit:' || NEW.tenant_id::text || ':' || NEW.chain::text, 0));
    SELECT seq, hash INTO last_seq, last_hash FROM audit_log
        WHERE tenant_id = NEW.tenant_id AND chain = NEW.chain ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := coalesce(last_hash, '\x'::bytea);
    NEW.created_at := date_trunc('microseconds', clock_timestamp());
    NEW.hash := unifocus_audit_hash(NEW.prev_hash, NEW);
    RETURN NEW;
END $$;

CREATE FUNCTION unifocus_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION unifocus_audit_chain();
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION unifocus_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION unifocus_audit_append_only();

-- The jobs (idempotency cleanup, exception sweep, audit export) walk tenants one by one and
-- set the tenant for each; this is the only cross-tenant read, and it returns ids only.
CREATE FUNCTION unifocus_tenant_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT tenant_id FROM tenants ORDER BY tenant_id
$$;
REVOKE ALL ON FUNCTION unifocus_tenant_ids() FROM PUBLIC;
CREATE POLICY tenants_owner_directory ON tenants FOR SELECT TO CURRENT_USER USING (true);
"""

APP_GRANTS = {
    "tenants": "SELECT, INSERT, UPDATE",
    "employees": "SELECT, INSERT, UPDATE",
    "users": "SELECT, INSERT, UPDATE",
    "schedules": "SELECT, INSERT, UPDATE",
    "shifts": "SELECT, INSERT, UPDATE",
    "punches": "SELECT, INSERT, UPDATE",
    "exceptions": "SELECT, INSERT, UPDATE",
    "idempotency_records": "SELECT, INSERT, UPDATE, DELETE",
    "audit_log": "SELECT, INSERT",
}


def _app_password() -> str | None:
    value = context.config.attributes.get("app_password")
    return str(value) if value else None


def upgrade() -> None:
    op.execute(SCHEMA)
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            "USING (tenant_id = NULLIF((SELECT current_setting('app.tenant_id', true)), '')::uuid) "
            "WITH CHECK (tenant_id = NULLIF((SELECT current_setting('app.tenant_id', true)), '')::uuid)"
        )
        op.execute(
            f"CREATE TRIGGER {table}_tenant_fixed BEFORE UPDATE ON {table} FOR EACH ROW "
            "WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id) "
            "EXECUTE FUNCTION unifocus_reject_tenant_change()"
        )
    role = app_role()
    password = _app_password()
    login = "LOGIN PASSWORD '" + password.replace("'", "''") + "'" if password else "LOGIN"
    # Roles are cluster-wide; several databases (tests, staging) may race to create it.
    # the role name is checked by _app_role and the password quoted above
    op.execute(
        f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE {role} {login} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$;
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    for table, privileges in APP_GRANTS.items():
        op.execute(f"GRANT {privileges} ON {table} TO {role}")
    op.execute(f"GRANT SELECT ON alembic_version TO {role}")
    op.execute(f"GRANT EXECUTE ON FUNCTION unifocus_tenant_ids() TO {role}")


def downgrade() -> None:
    role = app_role()
    op.execute(
        f"""
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role};
                REVOKE ALL ON SCHEMA public FROM {role};
            END IF;
        END $$;
        """
    )
    # The append-only triggers refuse even the owner; dropping the table is the rollback's
    # deliberate, documented exception (a downgrade to base discards all data anyway).
    for table in reversed(
        ["tenants", "employees", "users", "schedules", "shifts", "punches", "exceptions",
         "idempotency_records", "audit_log"]
    ):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute("DROP FUNCTION IF EXISTS unifocus_tenant_ids()")
    op.execute("DROP FUNCTION IF EXISTS unifocus_audit_append_only()")
    op.execute("DROP FUNCTION IF EXISTS unifocus_audit_chain()")
    op.execute("DROP FUNCTION IF EXISTS unifocus_reject_tenant_change()")
