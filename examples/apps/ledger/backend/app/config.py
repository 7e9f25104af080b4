"""Settings from the environment, the way the app's deployment docs list them."""

import os


def postgres_settings() -> dict:
    """The database the API connects to, from POSTGRES_SERVER, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB."""
    return {
        "host": os.environ.get("POSTGRES_SERVER", ""),
        "port": int(os.environ.get("POSTGRES_PORT", "5432")),
        "user": os.environ.get("POSTGRES_USER", ""),
        "password": os.environ.get("POSTGRES_PASSWORD", ""),
        "dbname": os.environ.get("POSTGRES_DB", ""),
    }


PROJECT_NAME = os.environ.get("PROJECT_NAME", "ledger")
GREETING = os.environ.get("GREETING", "hello")
