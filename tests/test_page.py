"""The prediction page through Flask's test client: the form, the result, every kind of bad input, no model, and what
the page may not contain."""
import html, re
from html.parser import HTMLParser

import pytest

from iris_classifier.core import FEATURES, SPECIES, read_metadata
from iris_classifier.app import create_app

GOOD = dict(sepal_length="6.3", sepal_width="3.3", petal_length="6.0", petal_width="2.5")

class Elements(HTMLParser):
    "Every start tag of a page with its attributes, and the text of each element by id"
    def __init__(self, html:str):
        super().__init__()
        self.tags, self.text, self._open = [], {}, []
        self.feed(html)
    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in ("input", "link", "meta", "br", "img", "rect"): self._open.append(dict(attrs).get("id"))
    def handle_endtag(self, tag):
        if tag not in ("input", "link", "meta", "br", "img", "rect") and self._open: self._open.pop()
    def handle_data(self, data):
        for i in self._open:
            if i: self.text[i] = self.text.get(i, "") + data
    def find(self, tag:str, **attrs)->list[dict]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]

def text(page:str)->str:
    "The visible text of a page, whitespace collapsed"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())

def test_the_form_is_labelled_and_works_without_javascript(client):
    r = client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = Elements(r.text)
    (form,) = page.find("form")
    assert (form["method"], form["action"]) == ("post", "/#result")
    for f in FEATURES:
        (field,) = page.find("input", name=f)
        assert field["id"] == f and field["type"] == "text" and field["inputmode"] == "decimal"
        assert page.find("label", **{"for": f})  # every field has a label
        assert f"{f}-hint" in field["aria-describedby"] and "cm" in page.text[f"{f}-hint"]
    assert page.find("button", type="submit")
    assert page.find("html", lang="en") and page.find("meta", name="viewport")

def test_examples_are_links_that_prefill_the_form(client, published):
    page = Elements(client.get("/").text)
    links = [a for a in page.find("a") if "data-example" in a]
    assert [a["href"] for a in links] == [f"/?example={s}" for s in SPECIES]
    page = Elements(client.get("/?example=virginica").text)
    virginica = read_metadata(published)["reference"]["examples"]["virginica"]
    assert ({f: page.find("input", name=f)[0]["value"] for f in FEATURES}
            == {f: f"{v:g}" for f, v in zip(FEATURES, virginica)})
    assert Elements(client.get("/?example=roses").text).find("input", name="sepal_length")[0]["value"] == ""

def test_a_prediction_shows_species_probabilities_and_version(client, published):
    r = client.post("/", data=GOOD)
    assert r.status_code == 200
    page, words = Elements(r.text), text(r.text)
    assert "Iris virginica" in page.text["result-title"]
    assert all(f"{s}" in words for s in SPECIES) and re.search(r"virginica \d+\.\d %", words.replace("\u202f", " "))
    assert read_metadata(published)["model_version"] in page.text["result"]
    assert {f: page.find("input", name=f)[0]["value"] for f in FEATURES} == GOOD  # the form keeps the values
    bars = page.find("rect", **{"class": "fill"})
    assert len(bars) == 3 and all(0 <= float(b["width"]) <= 100 for b in bars)

@pytest.mark.parametrize("value, message", [
    ("", "Petal length is required."), ("   ", "Petal length is required."),
    ("abc", "Petal length must be a number, like 5.1."),
    ("5,1", "Petal length must be a number with a dot for decimals, like 5.1."),
    ("-1", "Petal length must be greater than 0."),
    ("0", "Petal length must be greater than 0."), ("31", "Petal length must be at most 30 cm."),
    ("1e999", "Petal length must be at most 30 cm."),
    ("99999999999999999999999", "Petal length must be at most 30 cm."),
    ("nan", "Petal length must be a number."), ("inf", "Petal length must be at most 30 cm."),
    ("-inf", "Petal length must be greater than 0."),
    ("<script>alert(1)</script>", "Petal length must be a number, like 5.1.")])
def test_bad_input_keeps_what_was_typed_and_says_why_next_to_the_field(client, value, message):
    r = client.post("/", data=dict(GOOD, petal_length=value))
    assert r.status_code == 400
    page = Elements(r.text)
    (field,) = page.find("input", name="petal_length")
    assert field["value"] == value and field["aria-invalid"] == "true"
    assert "petal_length-error" in field["aria-describedby"]
    assert message in page.text["petal_length-error"]  # next to the field
    # and in the summary at the top
    assert message in page.text["error-summary"] and page.find("a", href="#petal_length")
    assert "result" not in page.text and "<script>alert" not in r.text
    for f in FEATURES:
        if f != "petal_length": assert "aria-invalid" not in page.find("input", name=f)[0]

def test_every_wrong_field_gets_its_message(client):
    page = Elements(client.post("/", data={"sepal_width": "x"}).text)
    errors = set(i for i in page.text if i.endswith("-error") and i != "error-summary")
    assert errors == {f"{f}-error" for f in FEATURES}

def test_without_a_model_the_page_says_what_to_run(tmp_path):
    client = create_app({"TESTING": True, "MODEL_DIR": tmp_path}).test_client()
    assert "Run `iris-classifier train`" in text(client.get("/").text)
    r = client.post("/", data=GOOD)
    assert r.status_code == 503 and "Run `iris-classifier train`" in text(r.text) and "Traceback" not in r.text

def test_errors_are_pages_for_people(client):
    r = client.get("/no/such/page")
    assert r.status_code == 404 and r.mimetype == "text/html" and "Page not found" in r.text
    r = client.put("/", data=GOOD)
    assert r.status_code == 405 and r.mimetype == "text/html"

def test_oversized_form_is_413_not_500(client):
    assert client.post("/", data=dict(GOOD, padding="x" * 300_000)).status_code == 413

def test_no_inline_script_or_style(client):
    for html in [client.get("/").text, client.post("/", data=GOOD).text, client.post("/", data={}).text]:
        page = Elements(html)
        assert all("src" in a for a in page.find("script")), "inline <script>"
        assert not page.find("style")
        assert not any("style" in a or any(k.startswith("on") for k in a) for _, a in page.tags)

@pytest.mark.parametrize("path, mimetype", [("/static/style.css", "text/css"), ("/static/app.js", "text/javascript"),
                                            ("/static/favicon.svg", "image/svg+xml")])
def test_static_files(client, path, mimetype):
    r = client.get(path)
    assert r.status_code == 200 and r.mimetype == mimetype and r.headers["X-Content-Type-Options"] == "nosniff"

def test_the_page_counts_its_predictions(client):
    client.post("/", data=GOOD)
    assert 'iris_predictions_total{species="virginica"} 1.0' in client.get("/metrics").text
