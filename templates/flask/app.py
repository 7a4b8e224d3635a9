from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def index():
    return '<!doctype html><title>Flask</title><h1 id="title">Hello from Flask</h1>'


@app.get("/api/hello")
def hello():
    return jsonify(message="Hello from Flask")
