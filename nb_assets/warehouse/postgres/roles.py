"""The deployment's logins on its own cluster: one owner per database, and a reader per warehouse.

    dagster            owns database `dagster` (Dagster's runs, events, schedules)
    nb_assets_owner    owns database `warehouse`: loads outputs, records landings
    nb_assets_reader   CONNECT on `warehouse` only, USAGE + SELECT on the schemas
                       notebooks read (and on tables made there later), read-only
                       by default; nothing in any other database or schema; TEMPORARY
                       on `warehouse` (declared sources read in SQL, postgres/sources.py)

On an existing warehouse server (`deploy up --warehouse postgresql://...`) the
deployment makes the reader only, as the warehouse's login (`provision_reader`):
`nb_assets_reader_<database>`, one per warehouse database, since roles are
cluster-wide and a shared name would give one deployment's reader the other's
database (and let each `deploy up` reset the other's password). It gets the
same grants on that database; the database's other grants (PUBLIC's CONNECT,
which Postgres gives every new database) are the server's admin's and stay.

Unlike `PostgresWarehouse.create_reader` (a member of `pg_read_all_data`, which
reads every table of every database in the cluster), this reader sees what
the notebooks read and nothing else. Each password travels to the server as
its scram-sha-256 verifier, so it never reaches the server's log, even when a
statement fails. Everything here is idempotent: `deploy up` runs it on every
start, which is also how rotated passwords reach the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import adbc_driver_postgresql.dbapi as adbc

from nb_assets.errors import WarehouseError
from nb_assets.locations import redact
from nb_assets.warehouse.base import ident
from nb_assets.warehouse.postgres import driver as pg_driver
from nb_assets.warehouse.postgres.driver import server_message

READER_PREFIX = "nb_assets_reader_"
_SYSTEM_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg\\_%'"


@dataclass(frozen=True)
class Login:
    name: str
    password: str


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """What Postgres stores for a scram-sha-256 password (as libpq's PQencryptPasswordConn makes it):
    sent instead of the password, so no statement the server logs can hold the password."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def provision_deployment(
    admin_dsn: str, *, storage: tuple[str, Login], warehouse: tuple[str, Login], reader: Login,
    reader_schemas: Iterable[str],
) -> None:
    """As the cluster's superuser (`admin_dsn`): the three logins, both databases owned by their
    login and closed to everyone else, every existing object in them handed to that owner (a state
    folder from before there were owners), and the reader's grants on `reader_schemas`."""
    (storage_db, storage_login), (warehouse_db, owner) = storage, warehouse
    try:
        with pg_driver.connect(admin_dsn, autocommit=True) as con, con.cursor() as cur:
            for login in (storage_login, owner, reader):
                _ensure_login(cur, login)
            cur.execute(f"ALTER ROLE {ident(reader.name)} SET default_transaction_read_only = on")
            for database, login in ((storage_db, storage_login), (warehouse_db, owner)):
                cur.execute("SELECT 1 FROM pg_database WHERE datname = $1", (database,))
                if not cur.fetchall():
                    cur.execute(f"CREATE DATABASE {ident(database)} OWNER {ident(login.name)}")
                cur.execute(f"ALTER DATABASE {ident(database)} OWNER TO {ident(login.name)}")
                cur.execute(f"REVOKE ALL ON DATABASE {ident(database)} FROM PUBLIC")
                cur.execute(f"GRANT CONNECT ON DATABASE {ident(database)} TO {ident(login.name)}")
            cur.execute(f"GRANT CONNECT ON DATABASE {ident(warehouse_db)} TO {ident(reader.name)}")
            cur.execute("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")  # the admin database: the superuser's
        for database, login in ((storage_db, storage_login), (warehouse_db, owner)):
            with pg_driver.connect(on_database(admin_dsn, database), autocommit=True) as con, con.cursor() as cur:
                _hand_objects_to(cur, login.name)
        with pg_driver.connect(on_database(admin_dsn, warehouse_db), autocommit=True) as con, con.cursor() as cur:
            cur.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            grant_reader(cur, owner.name, reader.name, reader_schemas)
    except adbc.Error as exc:
        raise WarehouseError(f"setting up the deployment's logins on {redact(admin_dsn)} failed: {server_message(exc)}") from exc


def grant_reader(cur: object, owner: str, reader: str, schemas: Iterable[str]) -> None:
    """SELECT for `reader` on each schema's tables, now and later (the owner's future tables): the
    schema made (as the owner) if missing, so a mart the first load creates is readable too; and
    TEMPORARY on the database, for declared sources read in SQL."""
    run = cur.execute  # type: ignore[attr-defined]
    # A `source('x')` in SQL reads the host's fetched copy as a temporary table of the reader's own
    # prefetch transaction, rolled back with it (warehouse/postgres/sources.py): nothing more is readable.
    run("SELECT current_database()")
    database = cur.fetchall()[0][0]  # type: ignore[attr-defined]
    run(f"GRANT TEMPORARY ON DATABASE {ident(database)} TO {ident(reader)}")
    for schema in sorted(set(schemas)):
        run(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)} AUTHORIZATION {ident(owner)}")
        run(f"GRANT USAGE ON SCHEMA {ident(schema)} TO {ident(reader)}")
        run(f"GRANT SELECT ON ALL TABLES IN SCHEMA {ident(schema)} TO {ident(reader)}")
        run(f"ALTER DEFAULT PRIVILEGES FOR ROLE {ident(owner)} IN SCHEMA {ident(schema)} "
            f"GRANT SELECT ON TABLES TO {ident(reader)}")


def reader_login(database: str) -> str:
    """The reader's login for warehouse database `database` on a server others share: its own name
    per database (a hash of the name when it would need quoting or pass Postgres's 63 bytes)."""
    name = READER_PREFIX + database
    if re.fullmatch(r"[a-z0-9_]{1,63}", name):
        return name
    return READER_PREFIX + hashlib.sha256(database.encode()).hexdigest()[:16]


def provision_reader(owner_dsn: str, reader: Login, reader_schemas: Iterable[str]) -> None:
    """On an existing server, as the warehouse's own login (`owner_dsn`: it needs CREATEROLE and to own
    its database): `reader` made or updated with CONNECT on that database only, USAGE + SELECT on
    `reader_schemas` now and later, read-only, a member of no role (pg_read_all_data would read
    every database). Idempotent, like `provision_deployment`."""
    database = urlsplit(owner_dsn).path.lstrip("/")
    try:
        with pg_driver.connect(owner_dsn, autocommit=True) as con, con.cursor() as cur:
            cur.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
            owner, is_super = cur.fetchall()[0]
            _ensure_login(cur, reader, attributes=is_super)
            cur.execute(f"ALTER ROLE {ident(reader.name)} SET default_transaction_read_only = on")
            _refuse_powers(cur, reader.name)
            cur.execute("SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                        "WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = $1)", (reader.name,))
            for (role,) in cur.fetchall():
                cur.execute(f"REVOKE {ident(role)} FROM {ident(reader.name)}")
            cur.execute(f"GRANT CONNECT ON DATABASE {ident(database)} TO {ident(reader.name)}")
            grant_reader(cur, owner, reader.name, reader_schemas)
    except adbc.Error as exc:
        raise WarehouseError(
            f"making the warehouse's reader {reader.name} on {redact(owner_dsn)} failed: {server_message(exc)} "
            "(the warehouse's login needs CREATEROLE and to own its database)") from exc


def set_password(admin_dsn: str, login: Login) -> None:
    """A new password for an existing login (rotation), sent as its verifier."""
    try:
        with pg_driver.connect(admin_dsn, autocommit=True) as con, con.cursor() as cur:
            cur.execute(f"ALTER ROLE {ident(login.name)} PASSWORD '{scram_verifier(login.password)}'")
    except adbc.Error as exc:
        raise WarehouseError(f"changing the password of {login.name} on {redact(admin_dsn)} failed: {server_message(exc)}") from exc


def _ensure_login(cur: object, login: Login, *, attributes: bool = True) -> None:
    """Made or updated with its password. `attributes=False`: an existing role's superuser-only
    attributes left unsaid (only a superuser may even repeat NOSUPERUSER; `_refuse_powers` checks them)."""
    run = cur.execute  # type: ignore[attr-defined]
    run("SELECT 1 FROM pg_roles WHERE rolname = $1", (login.name,))
    exists = bool(cur.fetchall())  # type: ignore[attr-defined]
    verb = "ALTER" if exists else "CREATE"
    powers = "NOSUPERUSER NOCREATEDB NOCREATEROLE " if attributes or not exists else ""
    run(f"{verb} ROLE {ident(login.name)} LOGIN {powers}PASSWORD '{scram_verifier(login.password)}'")


def _refuse_powers(cur: object, name: str) -> None:
    """A reader that someone made a superuser, or able to create roles or databases, is no reader."""
    cur.execute("SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls "  # type: ignore[attr-defined]
                "FROM pg_roles WHERE rolname = $1", (name,))
    if cur.fetchall()[0][0]:  # type: ignore[attr-defined]
        raise WarehouseError(f"the role {name} exists with powers beyond reading (superuser, CREATEROLE, CREATEDB, "
                             "REPLICATION or BYPASSRLS): drop it or take them away, then deploy up again")


def _hand_objects_to(cur: object, owner: str) -> None:
    """Every schema, table, view and sequence outside the system's, to `owner` (idempotent)."""
    run = cur.execute  # type: ignore[attr-defined]
    run(f"SELECT n.nspname FROM pg_namespace n WHERE {_SYSTEM_SCHEMAS} AND n.nspname <> 'public' "
        "AND pg_get_userbyid(n.nspowner) <> $1", (owner,))
    for (schema,) in cur.fetchall():  # type: ignore[attr-defined]
        run(f"ALTER SCHEMA {ident(schema)} OWNER TO {ident(owner)}")
    run(f"""SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE {_SYSTEM_SCHEMAS} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
              AND pg_get_userbyid(c.relowner) <> $1
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))""", (owner,))
    kinds = {"r": "TABLE", "p": "TABLE", "f": "FOREIGN TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
    for schema, name, kind in cur.fetchall():  # type: ignore[attr-defined]
        run(f"ALTER {kinds[kind]} {ident(schema)}.{ident(name)} OWNER TO {ident(owner)}")


def on_database(dsn: str, database: str) -> str:
    """`dsn` (its login, host and port) on another database."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))
