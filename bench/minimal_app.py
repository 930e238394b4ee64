"""The smallest Flask + scikit-learn server that answers like ours: the yardstick `bench/serving.py` starts.

    IRIS_BENCH_MODEL=$PWD/tree.joblib \
        gunicorn --config python:iris_classifier.gunicorn_conf --chdir bench minimal_app:app

At import it loads a joblib-dumped `DecisionTreeClassifier` fitted on scikit-learn's Iris data (the bench
fits and dumps it; `IRIS_BENCH_MODEL` says where); POST /api/predict with the four measurements as JSON
answers its prediction. No validation, metrics, page or model checks: what any server must pay is left.
"""
import os

import joblib
from flask import Flask, jsonify, request

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
model = joblib.load(os.environ["IRIS_BENCH_MODEL"])
app = Flask(__name__)

@app.post("/api/predict")
def predict():
    "The species the tree predicts for one flower"
    row = [float(request.get_json()[f]) for f in FEATURES]
    return jsonify(species=str(model.predict([row])[0]))
