"""A Flask app served by gunicorn; its dependencies come from PyPI at staging."""
import os

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def index():
    return jsonify(message="hello from flask-app", instance_index=os.environ.get("CF_INSTANCE_INDEX"))
