"""The docs site in headless Chromium: navigation reaches every page, search finds a function, nothing is fetched from
outside loopback."""
import functools, http.server, threading
from urllib.parse import urlsplit

import pytest

from conftest import ROOT
from test_docs import built_site
from nbdocs import notebooks, page_name

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore:.*Check CHANGES for Sphinx API modifications")]
SHOTS = ROOT/"artifacts"/"docs-screenshots"

@pytest.fixture(scope="module")
def server():
    "The built site served on an ephemeral loopback port; yields its base URL"
    site, problems = built_site()
    if not (site/"index.html").exists(): pytest.fail(f"the docs site was not built: {problems}")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    handler = functools.partial(Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()

@pytest.fixture(scope="module")
def page(browser):
    "A Chromium page whose every request is recorded; requests that would leave loopback are aborted"
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg = browser.new_page(viewport={"width": 1280, "height": 900})
    pg.outside = []
    def route(r):
        if urlsplit(r.request.url).hostname in ("127.0.0.1", "localhost"): return r.continue_()
        pg.outside.append(r.request.url)
        r.abort()
    pg.route("**/*", route)
    yield pg
    pg.close()

def test_navigation_reaches_every_page(server, page):
    page.goto(server + "index.html")
    page.screenshot(path=SHOTS/"index.png", full_page=True)
    links = page.eval_on_selector_all("nav.bd-docs-nav a.reference.internal",
                                      "els => els.map(e => [e.textContent.trim(), e.href])")
    expected = {f"{server}{page_name(nb)}.html" for nb in notebooks(ROOT/"nbs")}
    links = [(text, url.split("#")[0]) for text, url in links]
    assert expected <= {url for _, url in links}, links
    for text, url in links:
        page.locator("nav.bd-docs-nav a.reference.internal", has=page.get_by_text(text, exact=True)).click()
        page.wait_for_load_state()
        assert page.url.split("#")[0] == url
        assert page.inner_text("article h1").strip(), url
        name = url.removeprefix(server).replace("/", "_").removesuffix(".html")
        page.screenshot(path=SHOTS/f"{name}.png", full_page=True)
    assert page.outside == [], "pages requested hosts other than loopback"

def test_search_finds_a_function(server, page):
    page.goto(server + "index.html")
    page.click("button.search-button-field")
    page.fill(".bd-search input[name=q]", "split_data")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search.html?q=split_data*")
    hit = page.locator("#search-results a", has_text="split_data").first
    hit.wait_for(timeout=15_000)
    assert "pipeline.html" in hit.get_attribute("href")  # split_data is the pipeline chapter's
    page.screenshot(path=SHOTS/"search.png", full_page=True)
    hit.click()
    page.wait_for_load_state()
    assert "pipeline.html" in page.url
    assert page.outside == [], "pages requested hosts other than loopback"
