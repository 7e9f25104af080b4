"""The SQLite connection of one request, and the `init-db` command that creates the tables."""

import sqlite3

import click
from flask import current_app, g

SCHEMA = """
CREATE TABLE IF NOT EXISTS entry (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    body TEXT NOT NULL
);
"""


def get_db():
    if "db" not in g:
        g.db = sqlite3.connect(current_app.config["DATABASE"])
        g.db.row_factory = sqlite3.Row
    return g.db


def close_db(_=None):
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


@click.command("init-db")
def init_db_command():
    """Create the tables if they are missing (safe to run again)."""
    get_db().executescript(SCHEMA)
    click.echo("database ready")


def init_app(app):
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
