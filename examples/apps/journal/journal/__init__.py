"""journal: a diary kept in SQLite in the app's instance folder."""

import os

from flask import Flask, jsonify, request

from . import db


def create_app():
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("SECRET_KEY", "dev"),
        DATABASE=os.path.join(app.instance_path, "journal.sqlite"),
        GREETING=os.environ.get("GREETING", "hello"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    db.init_app(app)

    @app.get("/")
    def index():
        rows = db.get_db().execute("SELECT body FROM entry ORDER BY id").fetchall()
        return jsonify(app="journal", greeting=app.config["GREETING"], entries=[r["body"] for r in rows])

    @app.post("/entries")
    def add_entry():
        body = (request.get_json(silent=True) or {}).get("body", "").strip()
        if not body:
            return jsonify(error="body is required"), 400
        conn = db.get_db()
        conn.execute("INSERT INTO entry (body) VALUES (?)", (body,))
        conn.commit()
        return jsonify(ok=True), 201

    return app
