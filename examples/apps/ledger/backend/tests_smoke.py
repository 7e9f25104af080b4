"""Run with the dev group: `uv run pytest tests_smoke.py`."""

from app.main import health_check


def test_health_check():
    assert health_check() is True
