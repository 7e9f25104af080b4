"""dibby: a tiny Flask app for vpskit's examples (the guide's Dibby Dollars, much reduced).

Notes and account balances live in the app's database (db.py); two scheduled
jobs (``flask --app app snapshot-balances``, ``flask --app app pay-interest``)
and a cron call to ``/internal/cleanup`` are set up by vpskit from the config.
"""

import datetime
import os

from flask import Flask, abort, jsonify, request

from db import ENGINE, run

app = Flask(__name__, static_folder=None)
app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]


@app.get("/")
def index():
    notes = [row[0] for row in run("SELECT text FROM notes ORDER BY id", fetch=True)]
    return jsonify(app="dibby", greeting=os.environ.get("GREETING", "hello"), database=ENGINE, notes=notes)


@app.post("/notes")
def add_note():
    text = (request.get_json(silent=True) or {}).get("text", "")
    if not isinstance(text, str) or not text.strip():
        abort(400)
    run("INSERT INTO notes (text) VALUES (%s)", (text.strip(),))
    return jsonify(added=text.strip()), 201


@app.get("/balances")
def balances():
    rows = run("SELECT name, balance_cents FROM accounts ORDER BY name", fetch=True)
    snapshots = run("SELECT count(*) FROM balance_snapshots", fetch=True)[0][0]
    return jsonify(balances={name: cents for name, cents in rows}, snapshots=snapshots)


@app.post("/internal/cleanup")
def cleanup():
    """For the cron job on the host only: a request that came through nginx carries X-Forwarded-For."""
    if request.remote_addr != "127.0.0.1" or "X-Forwarded-For" in request.headers:
        abort(404)
    run("DELETE FROM notes WHERE trim(text) = ''")
    return jsonify(cleaned=True)


@app.get("/headers")
def headers():
    """The proxy headers as the app received them."""
    names = ["Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-IP", "Upgrade", "Connection"]
    return jsonify({name: request.headers.get(name) for name in names})


@app.cli.command("snapshot-balances")
def snapshot_balances():
    """Record today's total of all balances."""
    total = run("SELECT coalesce(sum(balance_cents), 0) FROM accounts", fetch=True)[0][0]
    run("INSERT INTO balance_snapshots (taken_at, total_cents) VALUES (%s, %s)", (datetime.datetime.now().isoformat(), total))
    print(f"snapshot: {total} cents")


@app.cli.command("pay-interest")
def pay_interest():
    """Weekly interest: 1% on every balance."""
    run("UPDATE accounts SET balance_cents = balance_cents + balance_cents / 100")
    print("interest paid")
