"""The ledger API: everything under /api/v1, a health check for the load balancer."""

import hashlib
import os

import psycopg
from fastapi import APIRouter, FastAPI

from . import config

api = APIRouter(prefix="/api/v1")


@api.get("/utils/health-check/")
def health_check() -> bool:
    return True


@api.get("/info")
def info() -> dict:
    settings = config.postgres_settings()
    database = None
    if settings["host"]:
        with psycopg.connect(**settings, connect_timeout=5) as conn:
            database = conn.execute("SELECT current_user, current_database()").fetchone()
    # Which key the app was given, without showing it.
    api_key = os.environ.get("PAYMENTS_API_KEY", "")
    return {
        "app": config.PROJECT_NAME,
        "greeting": config.GREETING,
        "database": list(database) if database else None,
        "payments_key_sha256": hashlib.sha256(api_key.encode()).hexdigest() if api_key else None,
    }


app = FastAPI(title=config.PROJECT_NAME, openapi_url="/api/v1/openapi.json")
app.include_router(api)
