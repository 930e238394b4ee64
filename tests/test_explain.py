"""Explanations through Flask's test client: `?explain=true` on the API against scikit-learn and the OpenAPI document,
the page's path, note and picture, its size, and models published before explanations or with a damaged file."""
import json, logging
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from iris_classifier.core import FEATURES, METADATA_FILE, SPECIES, read_metadata
from iris_classifier.data_processing import load_iris_frame
from iris_classifier.app import create_app
from test_page import Elements, text

FAR = [5.1, 3.5, 14.0, 0.2]  # passes the input checks, far beyond any training petal

def iris_rows()->list[list[float]]: return load_iris_frame()[FEATURES].to_numpy().tolist()

def test_the_path_is_the_trees_decision_for_every_iris_flower(client, trained):
    r = client.post("/api/predict?explain=true", json={"instances": iris_rows()})
    pipe = trained.pipeline
    X = pipe[:-1].transform(load_iris_frame()[FEATURES])
    visited, counts = pipe[-1].decision_path(X).tolil().rows, pipe[-1].tree_.n_node_samples
    t = pipe[-1].tree_
    for row, p, nodes in zip(iris_rows(), r.json["predictions"], visited):
        x = p["explanation"]
        assert [(s["feature"], s["threshold"]) for s in x["path"]] == [(FEATURES[t.feature[n]], t.threshold[n])
                                                                       for n in nodes[:-1]]
        assert all((s["value"] <= s["threshold"]) == (s["direction"] == "<=")
                   and s["value"] == row[FEATURES.index(s["feature"])] for s in x["path"])
        assert sum(x["leaf_counts"].values()) == counts[nodes[-1]]
        assert p["species"] == max(x["leaf_counts"], key=x["leaf_counts"].get)

def test_explained_responses_match_the_openapi_document(client):
    doc = client.get("/openapi.json").json
    answer = doc["paths"]["/api/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    schema = {**answer, "components": doc["components"]}
    r = client.post("/api/predict?explain=true",
                    json={"instances": [dict(zip(FEATURES, [5.1, 3.5, 1.4, 0.2])), FAR, [0.05, 0.05, 0.05, 0.05]]})
    jsonschema.validate(r.json, schema)
    assert [f["feature"] for f in r.json["predictions"][1]["explanation"]["out_of_range"]] == ["petal_length"]
    assert {f["feature"] for f in r.json["predictions"][2]["explanation"]["out_of_range"]} == set(FEATURES)

def test_without_the_option_the_response_is_unchanged(client):
    plain = client.post("/api/predict", json={"instances": [FAR]})
    off = client.post("/api/predict?explain=false", json={"instances": [FAR]})
    assert ([set(p) for p in plain.json["predictions"] + off.json["predictions"]]
            == [{"species", "class_index", "probabilities"}] * 2)

@pytest.mark.parametrize("value", ["yes", "1", "", "TRUE"])
def test_a_bad_option_is_a_400_that_names_it(client, value):
    r = client.post(f"/api/predict?explain={value}", json=dict(zip(FEATURES, FAR)))
    assert r.status_code == 400 and r.json["error"].startswith("explain must be true or false")

def explained_page(client, row:list[float]):
    r = client.post("/", data=dict(zip(FEATURES, map(str, row))))
    assert r.status_code == 200
    return r

@pytest.mark.parametrize("species", SPECIES)
def test_the_page_explains_each_typical_flower(client, published, species):
    row = read_metadata(published)["reference"]["examples"][species]
    r = explained_page(client, row)
    page, words = Elements(r.text), text(r.text)
    assert f"Iris {species}" in page.text["result-title"] and f"→ {species}: " in words
    assert "training flowers that end here are" in words
    svg = ET.fromstring(r.text[r.text.index("<svg xmlns"):r.text.index("</svg>", r.text.index("<svg xmlns")) + 6])
    ns = "{http://www.w3.org/2000/svg}"
    assert [e.tag for e in svg][:2] == [f"{ns}title", f"{ns}desc"] and svg.get("role") == "img"
    assert len(svg.findall(f"{ns}g/{ns}circle")) == 1  # the flower's mark
    assert svg.find(f"{ns}desc").text in words  # the visible text alternative says what the description says
    assert "outside the" not in words
    assert len(r.data) < 20_000

def test_the_page_notes_a_measurement_beyond_the_training_flowers(client):
    words = text(explained_page(client, FAR).text)
    assert "Your flower is unlike the flowers the model learned from." in words
    assert "Petal length 14 cm is outside the training flowers' range" in words and "so the tree reads it as" in words

def published_without(published, key:str):
    "The published model's metadata as a model published before `key` existed: without the entry, its file gone"
    meta = read_metadata(published)
    (published/meta.pop(key)["file"]).unlink()
    (published/METADATA_FILE).write_text(json.dumps(meta))
    return create_app({"TESTING": True, "MODEL_DIR": published}).test_client()

def test_a_model_published_before_explanations_is_explained_from_its_tree_table(published):
    client = published_without(published, "explanation")
    r = client.post("/api/predict?explain=true", json={"instances": [FAR]})
    x = r.json["predictions"][0]["explanation"]
    assert r.status_code == 200 and x["path"] and x["leaf_counts"] is None and x["out_of_range"]
    words = text(explained_page(client, FAR).text)
    assert "<svg xmlns" not in explained_page(client, FAR).text
    assert "the tree’s path" in words and "outside the training flowers' range" in words

def test_a_model_served_by_scikit_learn_is_explained_by_its_ranges(published):
    client = published_without(published, "tree_table")
    r = client.post("/api/predict?explain=true", json={"instances": [FAR]})
    assert r.status_code == 200 and r.json["predictions"][0]["explanation"]["path"] is None
    words = text(explained_page(client, FAR).text)
    assert "outside the training flowers' range" in words and "the tree’s path" not in words

def test_a_damaged_explanation_file_costs_the_picture_not_the_answer(published, caplog):
    meta = read_metadata(published)
    damaged = dict(chart=dict(head="<script>", body=""), counts=[])
    (published/meta["explanation"]["file"]).write_text(json.dumps(damaged))
    with caplog.at_level(logging.WARNING):
        client = create_app({"TESTING": True, "MODEL_DIR": published}).test_client()
    assert "without the picture" in caplog.text
    r = explained_page(client, [6.1, 2.8, 4.3, 1.3])
    assert "<svg xmlns" not in r.text and "<script>" not in r.text and "the tree’s path" in text(r.text)
    answer = client.post("/api/predict?explain=true", json=dict(zip(FEATURES, FAR))).json["predictions"][0]
    assert answer["explanation"]["leaf_counts"] is None
