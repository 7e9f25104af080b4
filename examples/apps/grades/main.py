"""grades: a tiny FastAPI app for vpskit's examples (courses in its database, a websocket)."""

import os

from fastapi import Body, FastAPI, WebSocket

from store import URL, execute

app = FastAPI()


@app.get("/")
def index():
    courses = [row[0] for row in execute("SELECT name FROM courses ORDER BY name")]
    database = "postgresql" if URL.startswith("postgresql://") else "sqlite"
    return {"app": "grades", "greeting": os.environ.get("GREETING", "hello"), "database": database, "courses": courses}


@app.post("/courses", status_code=201)
def add_course(name: str = Body(..., embed=True, min_length=1, max_length=100)):
    execute("INSERT INTO courses (name) VALUES ({}) ON CONFLICT DO NOTHING", name)
    return {"added": name}


@app.websocket("/ws")
async def ws(socket: WebSocket):
    await socket.accept()
    await socket.send_text("grades websocket")
    await socket.close()
