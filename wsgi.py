"""WSGI entry point for gunicorn: ``gunicorn wsgi:app``."""

from tipline import create_app

app = create_app()
