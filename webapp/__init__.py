"""The web side of the iris classifier: the page's templates and static files, the API's OpenAPI document,
the WSGI entry point (`wsgi.py`) and the production server's settings (`gunicorn.conf.py`).
The application itself is built by `iris_classifier.serving.create_app` (nbs/03_serving.ipynb)."""
