"""`emozoo serve`: an HTTP service answering with one or more models (FastAPI + uvicorn)."""

from zoo.serve.app import create_app
from zoo.serve.models import load_models
from zoo.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "load_models"]
