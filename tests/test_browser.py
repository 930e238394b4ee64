"""The prediction page in a real browser: Debian's headless Chromium driven by Playwright (never `playwright
install`). Fills the form, submits, reads the answer; submits garbage and reads the field's message; does the
same with JavaScript off and on a phone-sized screen. Screenshots go to artifacts/screenshots/."""
import threading

import pytest
from werkzeug.serving import make_server

from conftest import ROOT
from iris_classifier.app import create_app

pytestmark = pytest.mark.browser
SHOTS = ROOT/"artifacts"/"screenshots"

@pytest.fixture(scope="module")
def base_url(trained, tmp_path_factory):
    "The application on a free loopback port, in a background thread"
    from iris_classifier.model_training import publish
    models = tmp_path_factory.mktemp("models")/"model"
    publish(trained, models)
    server = make_server("127.0.0.1", 0, create_app({"MODEL_DIR": models}), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()

@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.problems = []  # console errors (a CSP violation would show up here) and uncaught exceptions
    # 400: the form's own answer
    page.on("console", lambda m: m.type == "error" and "status of 400" not in m.text and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    yield page
    context.close()

def fill(page, values:dict):
    for name, value in values.items(): page.fill(f"#{name}", value)

def shot(page, name:str):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS/f"{name}.png"), full_page=True)

def test_predict_from_the_form(page, base_url):
    page.goto(base_url)
    assert page.title() == "Iris species predictor"
    fill(page, dict(sepal_length="6.3", sepal_width="3.3", petal_length="6.0", petal_width="2.5"))
    page.get_by_role("button", name="Predict the species").click()
    page.wait_for_selector("#result")
    assert page.inner_text("#result-title") == "Iris virginica"
    rows = page.locator(".probabilities tr")
    assert rows.count() == 3 and "%" in rows.nth(2).inner_text()
    assert "Answered by model" in page.inner_text("#result")
    assert page.input_value("#petal_length") == "6.0"
    shot(page, "desktop-result")
    assert page.problems == []

def test_garbage_gets_a_message_next_to_the_field(page, base_url):
    page.goto(base_url)
    fill(page, dict(sepal_length="5.1", sepal_width="3.5", petal_length="lots", petal_width="-2"))
    page.get_by_role("button", name="Predict the species").click()
    page.wait_for_selector("#error-summary")
    assert page.inner_text("#petal_length-error").endswith("Petal length must be a number, like 5.1.")
    assert page.inner_text("#petal_width-error").endswith("Petal width must be greater than 0.")
    assert page.input_value("#petal_length") == "lots"  # what was typed is kept
    assert page.get_attribute("#petal_length", "aria-invalid") == "true"
    # app.js moves keyboard and screen-reader users to the summary once the page has loaded
    page.wait_for_function("document.activeElement.id === 'error-summary'", timeout=10_000)
    page.click("#error-summary a[href='#petal_length']")
    assert page.evaluate("document.activeElement.id") == "petal_length"
    shot(page, "desktop-error")
    assert page.problems == []

def test_examples_fill_the_form_and_the_keyboard_works(page, base_url):
    page.goto(base_url)
    page.get_by_role("link", name="Iris setosa").click()
    assert page.input_value("#sepal_length") == "5"
    assert page.url.rstrip("/") == base_url  # filled in place by app.js, no reload
    page.keyboard.press("Enter")  # the script focused the submit button
    page.wait_for_selector("#result")
    assert page.inner_text("#result-title") == "Iris setosa"
    assert page.problems == []

def test_works_without_javascript(browser, base_url):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(base_url)
    page.get_by_role("link", name="Iris versicolor").click()  # a plain link: the server fills the form
    assert page.input_value("#petal_length") != ""
    page.get_by_role("button", name="Predict the species").click()
    page.wait_for_selector("#result")
    assert page.inner_text("#result-title") == "Iris versicolor"
    context.close()

def test_phone_layout(browser, base_url):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.goto(base_url)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the screen
    fill(page, dict(sepal_length="5.9", sepal_width="2.8", petal_length="4.35", petal_width="1.3"))
    page.get_by_role("button", name="Predict the species").click()
    page.wait_for_selector("#result")
    assert page.inner_text("#result-title") == "Iris versicolor"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "phone-result")
    page.fill("#sepal_width", "")
    page.get_by_role("button", name="Predict the species").click()
    page.wait_for_selector("#error-summary")
    shot(page, "phone-error")
    context.close()

def explained(page, base_url, values:dict, name:str):
    "Submit `values` and return the result section's text, after a screenshot"
    page.goto(base_url)
    fill(page, values)
    page.get_by_role("button", name="Predict the species").click()
    page.wait_for_selector("#result")
    shot(page, name)
    return page.inner_text("#result")

@pytest.mark.parametrize("species", ["setosa", "versicolor", "virginica"])
def test_each_typical_flower_is_explained(browser, base_url, species):
    # all of it works without JavaScript
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base_url}/?example={species}")
    page.get_by_role("button", name="Predict the species").click()
    page.wait_for_selector("#result")
    shot(page, f"explained-{species}")
    assert page.inner_text("#result-title") == f"Iris {species}"
    steps = page.locator("ol.path li")
    assert steps.count() >= 2 and steps.last.inner_text().startswith(f"→ {species}: ")
    chart = page.get_by_role("img", name="Your flower among the training flowers")
    assert chart.is_visible() and chart.bounding_box()["width"] > 200
    mark = page.locator("figure svg g circle")
    assert mark.count() == 1 and mark.is_visible()
    # the text alternative says the same
    assert page.locator("figure svg desc").text_content() == page.inner_text("figcaption")
    assert page.locator(".range-note").count() == 0
    context.close()

def test_an_out_of_range_flower_gets_a_note_beside_the_answer(page, base_url):
    words = explained(page, base_url, dict(sepal_length="5.1", sepal_width="3.5", petal_length="14", petal_width="0.2"),
                      "explained-out-of-range")
    note = page.get_by_role("note")
    assert note.is_visible() and "Petal length 14 cm is outside the training flowers' range" in note.inner_text()
    top = lambda element: element.bounding_box()["y"]
    assert top(page.locator("#result-title")) < top(note) < top(page.locator("ol.path"))
    # still answered, with the flower at the chart's edge
    assert "the tree’s path" in words and page.locator("figure svg g circle").is_visible()
    assert page.problems == []

def test_the_explanation_fits_a_phone(browser, base_url):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    explained(page, base_url, dict(sepal_length="5.9", sepal_width="2.8", petal_length="4.35", petal_width="1.3"),
              "phone-explained")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("figure svg").bounding_box()["width"] <= 390
    context.close()
