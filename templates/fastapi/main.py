from fastapi import FastAPI
from fastapi.responses import HTMLResponse

app = FastAPI()


@app.get("/", response_class=HTMLResponse)
def index() -> str:
    return '<!doctype html><title>FastAPI</title><h1 id="title">Hello from FastAPI</h1>'


@app.get("/api/hello")
def hello() -> dict:
    return {"message": "Hello from FastAPI"}
