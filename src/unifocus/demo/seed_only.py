"""`unifocus demo --seed-only`: the two demo tenants seeded into the configured database, and no
server: a staging environment's test tenants (deploy/overlays/staging runs it as a Job). What is
seeded, and why a re-run adds nothing, is `seed`; the command itself is `cli.demo`.

Its report names the tenants and their admin, manager and employee users by id, and prints no
token unless asked (--print-tokens): a Job's log goes to the cluster's log aggregation, which is
no place for credentials. A tester mints a token where the API's secret is, with
`unifocus token --tenant TENANT_ID --user USER_ID`."""

from __future__ import annotations

from typing import Any

from unifocus.db.migrate import database_state, head_revision, passing, schema_check


def schema_problem(owner_url: str) -> str | None:
    """None when the schema serves this code (its head, or a newer one that serves it: what
    `/ready` accepts), else why not, in `/ready`'s words. Asked instead of migrating when
    UNIFOCUS_MIGRATE_ON_START=false: the migration Job migrates, and the seed must not write
    into a schema that is not there yet, nor race that Job with a migration of its own."""
    head = head_revision()
    version, compatible_from = database_state(owner_url, head)
    check = schema_check(version, compatible_from, head)
    return None if passing(check) else check.removeprefix("error: ")


def report(summary: list[dict[str, Any]], tokens: bool = False) -> list[str]:
    """What was seeded, per tenant: its name, zone and id, whether this run wrote anything, and
    the ids of its admin, manager and employee users; with `tokens`, also the 24-hour tokens
    `unifocus demo` prints, else how to mint one."""
    lines: list[str] = []
    for tenant in summary:
        done = "seeded" if tenant["seeded"] else "already seeded, nothing added"
        lines.append(f"== {tenant['name']} ({tenant['timezone']}) tenant {tenant['tenantId']}: {done}")
        lines += [f"  {role:<8} user: {user_id}" for role, user_id in tenant["userIds"].items()]
        if tokens:
            lines += [f"  {role:<8} token: {token}" for role, token in tenant["tokens"].items()]
        else:
            lines.append(f"  a token: unifocus token --tenant {tenant['tenantId']} --user USER_ID "
                         "(where UNIFOCUS_JWT_SECRET is the API's)")
    return lines
