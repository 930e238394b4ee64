"""POST /api/feedback through the application (nbs/13_feedback.ipynb): the token, every kind of bad body, request
ids the server did not issue, and feedback joined to the prediction records by request id and row."""
import hmac, json

import pytest

import iris_classifier.feedback
from iris_classifier.app import create_app
from iris_classifier.serving import issue_request_id, signing_key
from iris_classifier.core import FEATURES
from test_records import OTHER, ROW, metric, records

TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
RID = issue_request_id(signing_key(None, TOKEN))  # an id any server with the token issued

@pytest.fixture
def client(published, tmp_path):
    "A client of an application with a feedback token, recording into `tmp_path/records`"
    return create_app({"TESTING": True, "MODEL_DIR": published, "RECORDS_DIR": tmp_path/"records",
                       "FEEDBACK_TOKEN": TOKEN}).test_client()

def error(resp, status:int)->str:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.is_json and set(resp.json) == {"error"}
    return resp.json["error"]

def test_feedback_joins_the_predictions_by_request_id_and_row(client, tmp_path):
    rid = client.post("/api/predict", json={"instances": [ROW, OTHER]}).json["request_id"]
    r = client.post("/api/feedback", json=[{"request_id": rid, "row": 1, "species": "versicolor"},
                                           {"request_id": rid, "species": "setosa"}], headers=BEARER)
    assert r.status_code == 200 and r.json == {"accepted": 2, "request_id": r.headers["X-Request-ID"]}
    predictions = {(p["request_id"], p["row"]): p for p in records(tmp_path/"records")}
    joined = [(predictions[(f["request_id"], f["row"])]["species"], f["species"])
              for f in records(tmp_path/"records", "feedback")]
    assert joined == [("virginica", "versicolor"), ("setosa", "setosa")]  # what was predicted, and what it was

def test_request_ids_another_pod_issued_are_accepted_and_counted(client, published, tmp_path):
    "Every pod with the same token (or ID_KEY) checks the others' ids without asking them"
    settings = {"TESTING": True, "MODEL_DIR": published, "RECORDS_DIR": tmp_path/"other", "FEEDBACK_TOKEN": TOKEN}
    other_pod = create_app(settings).test_client()
    rid = other_pod.post("/api/predict", json=dict(zip(FEATURES, OTHER))).json["request_id"]
    r = client.post("/api/feedback", json={"request_id": rid, "species": "virginica"}, headers=BEARER)
    assert (r.status_code, r.json["accepted"]) == (200, 1) and "known" not in r.json
    assert [(f["request_id"], f["species"]) for f in records(tmp_path/"records", "feedback")] == [(rid, "virginica")]
    assert metric(client, "iris_feedback_total ") == 1

def test_a_client_chosen_id_cannot_label_other_predictions(client, tmp_path):
    "Finding 3 of issue 25: two predictions sent as order-1001, then feedback about order-1001"
    own = {"X-Request-ID": "order-1001"}
    answers = [client.post("/api/predict", json=dict(zip(FEATURES, row)), headers=own).json for row in (ROW, OTHER)]
    ids = [a["request_id"] for a in answers]
    assert ids[0] != ids[1] and "order-1001" not in ids
    r = client.post("/api/feedback", json={"request_id": "order-1001", "species": "setosa"}, headers=BEARER)
    message = error(r, 400)
    assert 'must be an id this service issued for a prediction (got "order-1001")' in message
    assert "not an id of your own" in message and records(tmp_path/"records", "feedback") == []
    recorded = [(p["request_id"], p["client_request_id"]) for p in records(tmp_path/"records")]
    assert recorded == [(i, "order-1001") for i in ids]

@pytest.mark.parametrize("forged", ["0" * 36, RID[:-1] + ("A" if RID[-1] != "A" else "B"),  # a signature changed
                                    issue_request_id(b"another key" * 3), RID + "A"])
def test_forged_request_ids_are_400(client, tmp_path, forged):
    r = client.post("/api/feedback", json={"request_id": forged, "species": "setosa"}, headers=BEARER)
    assert "must be an id this service issued" in error(r, 400)
    assert records(tmp_path/"records", "feedback") == []

def test_id_key_signs_ids_whatever_the_token(published, tmp_path):
    "With IRIS_ID_KEY, pods check each other's ids even while their tokens differ (a token rotation in progress)"
    def made(token, key):
        settings = {"TESTING": True, "MODEL_DIR": published, "RECORDS_DIR": tmp_path}
        settings.update(FEEDBACK_TOKEN=token, ID_KEY=key)
        return create_app(settings).test_client()
    old, new, elsewhere = made(TOKEN, "k" * 32), made(TOKEN[::-1], "k" * 32), made(TOKEN, "x" * 32)
    rid = old.post("/api/predict", json=dict(zip(FEATURES, ROW))).json["request_id"]
    one = {"request_id": rid, "species": "setosa"}
    assert new.post("/api/feedback", json=one, headers={"Authorization": f"Bearer {TOKEN[::-1]}"}).status_code == 200
    assert elsewhere.post("/api/feedback", json=one, headers=BEARER).status_code == 400
    with pytest.raises(Exception, match="IRIS_ID_KEY must be a string of at least 16 characters"): made(TOKEN, "short")

def test_feedback_is_recorded_even_when_predictions_are_not_sampled(published, tmp_path):
    client = create_app({"TESTING": True, "MODEL_DIR": published, "RECORDS_DIR": tmp_path, "FEEDBACK_TOKEN": TOKEN,
                         "RECORDS_SAMPLE": 0}).test_client()
    rid = client.post("/api/predict", json=dict(zip(FEATURES, ROW))).json["request_id"]
    r = client.post("/api/feedback", json={"request_id": rid, "species": "setosa"}, headers=BEARER)
    assert r.json["accepted"] == 1
    assert records(tmp_path) == [] and [f["request_id"] for f in records(tmp_path, "feedback")] == [rid]

def test_without_a_token_the_route_is_404(published, tmp_path):
    client = create_app({"TESTING": True, "MODEL_DIR": published, "RECORDS_DIR": tmp_path}).test_client()
    r = client.post("/api/feedback", json={"request_id": "a", "species": "setosa"}, headers=BEARER)
    assert "not found" in error(r, 404)

def test_a_weak_token_leaves_the_route_off_and_says_why(published, tmp_path, caplog):
    client = create_app({"TESTING": True, "MODEL_DIR": published, "RECORDS_DIR": tmp_path,
                         "FEEDBACK_TOKEN": "hunter2"}).test_client()
    r = client.post("/api/feedback", json={"request_id": "a", "species": "setosa"},
                    headers={"Authorization": "Bearer hunter2"})
    assert r.status_code == 404
    assert "at least 16 characters" in caplog.text and "hunter2" not in caplog.text

def test_the_token_comes_from_the_environment(published, tmp_path, monkeypatch):
    monkeypatch.setenv("IRIS_FEEDBACK_TOKEN", TOKEN)
    client = create_app({"TESTING": True, "MODEL_DIR": published, "RECORDS_DIR": tmp_path}).test_client()
    r = client.post("/api/feedback", json={"request_id": RID, "species": "setosa"}, headers=BEARER)
    assert r.status_code == 200

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN[:-1]}"},
                                     {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": TOKEN}, {"X-Feedback-Token": TOKEN}])
def test_a_missing_or_wrong_token_is_401(client, tmp_path, headers):
    r = client.post("/api/feedback", json={"request_id": "a", "species": "setosa"}, headers=headers)
    assert "Authorization: Bearer" in error(r, 401) and r.headers["WWW-Authenticate"] == "Bearer"
    assert records(tmp_path/"records", "feedback") == []

def test_the_token_is_compared_in_constant_time(client, monkeypatch):
    calls, real = [], hmac.compare_digest
    def spy(a, b):
        calls.append((a, b))
        return real(a, b)
    monkeypatch.setattr(iris_classifier.feedback.hmac, "compare_digest", spy)
    r = client.post("/api/feedback", json={"request_id": "a", "species": "setosa"},
                    headers={"Authorization": "Bearer guess"})
    assert r.status_code == 401
    assert calls == [(b"guess", TOKEN.encode())]

@pytest.mark.parametrize("body, message", [
    ({"species": "setosa"}, "feedback[0].request_id must be an id this service issued for a prediction (got null)"),
    ({"request_id": "a b", "species": "setosa"}, 'feedback[0].request_id must be'),
    ({"request_id": 7, "species": "setosa"}, "(got 7)"),
    ({"request_id": RID}, "feedback[0].species must be one of setosa, versicolor, virginica (got null)"),
    ({"request_id": RID, "species": "Setosa"}, '(got "Setosa")'),
    ([{"request_id": RID, "species": "setosa"}, {"request_id": RID, "species": "setosa", "row": -1}],
     "feedback[1].row must be the row's index in its request, from 0 to 999 (got -1)"),
    ({"request_id": RID, "species": "setosa", "row": 1.5}, "row must be"),
    (["a"], "feedback[0] must be an object with request_id and species"),
    ([], "Send at least one row"),
    ("setosa", "feedback[0] must be an object"),
])
def test_bad_bodies_are_400_with_the_first_bad_item_named(client, tmp_path, body, message):
    assert message in error(client.post("/api/feedback", json=body, headers=BEARER), 400)
    assert records(tmp_path/"records", "feedback") == []  # nothing of a bad batch is kept

@pytest.mark.parametrize("data", ["", "{", b"\xff"])
def test_bodies_that_are_not_json_are_400(client, data):
    r = client.post("/api/feedback", data=data, content_type="application/json", headers=BEARER)
    assert "not valid JSON" in error(r, 400)

def test_wrong_content_type_is_415(client):
    r = client.post("/api/feedback", data=json.dumps({"request_id": "a", "species": "setosa"}), headers=BEARER)
    assert "Content-Type: application/json" in error(r, 415)

def test_oversized_batches_are_413(client, published, tmp_path):
    one = {"request_id": RID, "species": "setosa"}
    r = client.post("/api/feedback", json=[one] * 1001, headers=BEARER)
    assert "1001 rows in one request; the limit is 1000" in error(r, 413)
    assert client.post("/api/feedback", json=[one] * 1000, headers=BEARER).json["accepted"] == 1000
    r = client.post("/api/feedback", json=[dict(one, note="x" * 300)] * 1000, headers=BEARER)
    assert "larger than 262144 bytes" in error(r, 413)

def test_feedback_that_cannot_be_stored_is_503_and_counted(published, tmp_path):
    (tmp_path/"occupied").write_text("")
    client = create_app({"TESTING": True, "MODEL_DIR": published, "RECORDS_DIR": tmp_path/"occupied"/"x",
                         "FEEDBACK_TOKEN": TOKEN}).test_client()
    r = client.post("/api/feedback", json={"request_id": RID, "species": "setosa"}, headers=BEARER)
    assert "nothing was kept" in error(r, 503)
    assert metric(client, 'iris_records_failed_total{kind="feedback"}') == 1

def test_feedback_works_without_a_model(tmp_path):
    client = create_app({"TESTING": True, "MODEL_DIR": tmp_path/"none", "RECORDS_DIR": tmp_path/"records",
                         "FEEDBACK_TOKEN": TOKEN}).test_client()
    r = client.post("/api/feedback", json={"request_id": RID, "species": "virginica"}, headers=BEARER)
    assert r.status_code == 200
