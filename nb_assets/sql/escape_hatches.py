"""Postgres's ways out of a read-only query, by name: pure data and lookups, no sqlglot.

A `%%sql` input reads warehouse tables. In Postgres an ordinary-looking
SELECT can also read the server's files, run SQL given as text, reach other
servers, or hold a connection asleep. sql_lineage refuses each with a finding
naming the hatch; the read role's privileges (warehouse/postgres/warehouse.py) are the
second wall for whatever a list like this misses.
"""

from __future__ import annotations

SERVER_ACCESS = "sql-server-access"

_FILES = "reads or lists the database server's own files"
_LARGE_OBJECTS = "moves server files or stored large objects in or out (large objects)"
_OTHER_SERVER = "connects to another database server, whose tables are outside the warehouse's lineage"
_SQL_AS_TEXT = "runs SQL given as a string, so what it reads cannot be known"
_SLEEP = "holds the connection asleep (pg_sleep); a query that waits reads nothing"
_SERVER = "changes settings or acts on the server or other sessions"

# Exact names (lowercase) → why they are refused.
_BY_NAME: dict[str, str] = {
    **dict.fromkeys(("pg_read_file", "pg_read_binary_file", "pg_stat_file", "pg_current_logfile",
                     "pg_file_write", "pg_file_rename", "pg_file_unlink", "pg_file_sync", "pg_logdir_ls"), _FILES),
    **dict.fromkeys(("pg_sleep", "pg_sleep_for", "pg_sleep_until"), _SLEEP),
    **dict.fromkeys(("query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml",
                     "cursor_to_xmlschema", "table_to_xml", "table_to_xml_and_xmlschema", "schema_to_xml",
                     "schema_to_xml_and_xmlschema", "database_to_xml", "database_to_xml_and_xmlschema"), _SQL_AS_TEXT),
    **dict.fromkeys(("set_config", "pg_reload_conf", "pg_rotate_logfile", "pg_terminate_backend", "pg_cancel_backend",
                     "pg_advisory_lock", "pg_advisory_xact_lock", "pg_advisory_lock_shared",
                     "pg_advisory_xact_lock_shared", "pg_logical_emit_message", "pg_switch_wal",
                     "pg_create_restore_point", "pg_promote"), _SERVER),
}
# Families, by prefix → why.
_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("pg_ls_", _FILES),  # pg_ls_dir, pg_ls_logdir, pg_ls_waldir, pg_ls_tmpdir, pg_ls_archive_statusdir, ...
    ("lo_", _LARGE_OBJECTS),  # lo_import, lo_export, lo_get, lo_put, lo_from_bytea, ...
    ("dblink", _OTHER_SERVER),  # dblink, dblink_exec, dblink_connect, dblink_open, dblink_fetch, ...
    ("postgres_fdw", _OTHER_SERVER),  # postgres_fdw_get_connections, postgres_fdw_disconnect, ...
)
# System schemas: the server's catalog and settings (pg_hba_file_rules, pg_settings, ...), not warehouse tables.
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")


def escape_hatch(function: str, dialect: str) -> str | None:
    """Why calling `function` (any case, possibly schema-qualified) is refused, or None."""
    if dialect != "postgres":
        return None
    name = function.lower().rpartition(".")[2]
    if name in _BY_NAME:
        return _BY_NAME[name]
    return next((why for prefix, why in _BY_PREFIX if name.startswith(prefix)), None)


def hatch_message(function: str, why: str) -> str:
    return (
        f"{function}() {why}; a %%sql input may only read warehouse tables — "
        "refused (the read-only role would refuse most of these too)"
    )


def system_relation(schema: str | None, name: str, dialect: str) -> bool:
    """A relation of the server's catalog: a system schema, or a bare `pg_*` name
    (Postgres looks in pg_catalog before any other schema)."""
    if dialect != "postgres":
        return False
    if schema:
        return schema.lower() in SYSTEM_SCHEMAS or schema.lower().startswith("pg_")
    return name.lower().startswith("pg_")


def copy_program(tokens_upper: list[str]) -> bool:
    """`COPY ... PROGRAM '...'`: a shell command on the database server."""
    return bool(tokens_upper) and tokens_upper[0] == "COPY" and "PROGRAM" in tokens_upper
