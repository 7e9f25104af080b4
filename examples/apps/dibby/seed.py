"""Put dibby's first note in place."""

import os
import sqlite3

DB = os.path.join(os.environ.get("DATA_DIR", "."), "dibby.sqlite3")

with sqlite3.connect(DB) as db:
    db.execute("INSERT INTO notes (text) VALUES ('first note')")
