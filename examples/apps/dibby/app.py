"""dibby: a tiny Flask app for vpskit's examples (notes in SQLite)."""

import os
import sqlite3

from flask import Flask, jsonify, request

app = Flask(__name__, static_folder=None)
app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
DB = os.path.join(os.environ.get("DATA_DIR", "."), "dibby.sqlite3")


@app.get("/")
def index():
    with sqlite3.connect(DB) as db:
        notes = [row[0] for row in db.execute("SELECT text FROM notes ORDER BY id")]
    return jsonify(app="dibby", greeting=os.environ.get("GREETING", "hello"), notes=notes)


@app.get("/headers")
def headers():
    """The proxy headers as the app received them."""
    names = ["Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-IP", "Upgrade", "Connection"]
    return jsonify({name: request.headers.get(name) for name in names})
