"""Render vpskit's Jinja2 templates (templates/*.j2) to text, and find the files it ships (files/)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jinja2


def shipped_dir(name: str) -> Path:
    """
    The folder ``templates`` or ``files`` as this copy of vpskit has it.

    An installed wheel carries them inside the package (``operations/templates``);
    a source checkout, editable install included, keeps them at its top level.

    + name: ``"templates"`` or ``"files"``

    **Example:**

    .. code:: python

        script = (shipped_dir("files") / "vpskit-health").read_bytes()
    """
    installed = resources.files(__package__) / name
    if installed.is_dir():
        return Path(str(installed))
    return Path(__file__).resolve().parent.parent / name


TEMPLATES_DIR = shipped_dir("templates")
FILES_DIR = shipped_dir("files")


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context) -> str:
    """Render ``templates/<template>`` with ``context``; undefined names are errors."""
    return _env().get_template(template).render(**context)


def sha256(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def render_text(source: str, **context) -> str:
    """Render a template given as text (a user's own template file) like the built-in ones."""
    return _env().from_string(source).render(**context)
