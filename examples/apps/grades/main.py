"""grades: a tiny FastAPI app for vpskit's examples (courses in SQLite, a websocket)."""

import os
import sqlite3

from fastapi import FastAPI, WebSocket

app = FastAPI()
DB = os.path.join(os.environ.get("DATA_DIR", "."), "grades.sqlite3")


@app.get("/")
def index():
    with sqlite3.connect(DB) as db:
        courses = [row[0] for row in db.execute("SELECT name FROM courses ORDER BY name")]
    return {"app": "grades", "greeting": os.environ.get("GREETING", "hello"), "courses": courses}


@app.websocket("/ws")
async def ws(socket: WebSocket):
    await socket.accept()
    await socket.send_text("grades websocket")
    await socket.close()
