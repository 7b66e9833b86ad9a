"""The PostgreSQL server of a test run (tests/conftest.py makes one from
MEDOPS_TEST_POSTGRES_URL): creates and drops per-test databases."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
from sqlalchemy.engine import make_url


@dataclass
class PgServer:
    """The PostgreSQL server of this run: creates and drops per-test databases."""

    admin_url: str
    prefix: str
    template: str
    created: list[str]

    def _sqlalchemy_url(self, name: str) -> str:
        url = make_url(self.admin_url).set(drivername="postgresql+psycopg", database=name)
        return url.render_as_string(hide_password=False)

    def _conninfo(self) -> str:
        return (
            make_url(self.admin_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )

    def execute(self, sql: str) -> None:
        with psycopg.connect(self._conninfo(), autocommit=True) as conn:
            conn.execute(sql.encode())  # our own fixed statements (no parameters)

    def new_database(self, *, migrated: bool = True) -> str:
        name = f"{self.prefix}_{uuid.uuid4().hex[:10]}"
        template = f" TEMPLATE {self.template}" if migrated else ""
        self.execute(f"CREATE DATABASE {name}{template}")
        self.created.append(name)
        return self._sqlalchemy_url(name)

    def drop_all(self) -> None:
        for name in [*self.created, self.template]:
            self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
