"""pollster: one poll, votes kept in the app's data directory."""

import json
import os
from pathlib import Path

from flask import Flask, abort, jsonify

app = Flask(__name__)
CHOICES = ("tea", "coffee")


def _store() -> Path:
    return Path(os.environ.get("DATA_DIR", ".")) / "votes.json"


def _votes() -> dict:
    try:
        return json.loads(_store().read_text())
    except FileNotFoundError:
        return dict.fromkeys(CHOICES, 0)


@app.get("/")
def index():
    return jsonify(app="pollster", greeting=os.environ.get("GREETING", "hello"), votes=_votes())


@app.post("/vote/<choice>")
def vote(choice: str):
    if choice not in CHOICES:
        abort(404)
    votes = _votes()
    votes[choice] += 1
    _store().write_text(json.dumps(votes))
    return jsonify(votes), 201
