"""WSGI entry point of the production server:

    gunicorn --config webapp/gunicorn.conf.py webapp.wsgi:app

Each gunicorn worker imports this module once, which loads and verifies the published model before the
worker accepts its first request."""
from iris_classifier.serving import create_app

app = create_app()
