"""A real browser (Debian's Chromium driven by Playwright) on the real page with the real models."""

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_web import free_port

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SEEDS = ROOT / "seeds"
BOT = "#chat .message.bot, #chat [data-testid='bot']"
# A bot message beyond the first `n` shows text from the answer (not Gradio's loading placeholder).
NEW_TEXT = """(n) => {
  const m = document.querySelectorAll("#chat .message.bot, #chat [data-testid='bot']");
  if (m.length <= n) return false;
  const text = m[m.length - 1].innerText.trim();
  return text.length > 0 && !text.startsWith("Loading");
}"""


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from rag import store
    from rag.documents import load_corpus
    from rag.pipeline import Engine, load_configured_embedder
    from rag.settings import Settings
    from rag.web import launch

    settings = Settings(index_dir=tmp_path_factory.mktemp("web-index"), manifest_path=ROOT / "models.txt")
    store.build(settings.index_dir, load_corpus(SEEDS), load_configured_embedder(settings), settings.chunk_chars)
    engine = Engine.load(settings)
    engine.warm_up()  # as `rag serve` does
    port = free_port()
    demo = launch(engine, "127.0.0.1", port, block=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_ask_stream_click_citation_and_see_the_quote(page_url, tmp_path):
    from playwright.sync_api import sync_playwright

    question = "Combien de GPU H800 DeepSeek a-t-il utilisés ?"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 950})
        page.goto(page_url)
        box = page.locator("#question textarea")
        box.fill(question)
        asked = time.perf_counter()
        box.press("Enter")
        page.wait_for_function(NEW_TEXT, arg=0, timeout=60_000)
        first_token_ms = (time.perf_counter() - asked) * 1000
        page.locator("#sources .source").first.wait_for(timeout=60_000)
        link = page.locator("#chat a[href='#src-1']").first
        link.wait_for(timeout=10_000)
        link.click()
        card = page.locator("#src-1")
        assert "active" in (card.get_attribute("class") or "")
        quote = card.locator("mark").inner_text()
        seeds_text = " ".join(" ".join(p.read_text("utf-8").split()) for p in SEEDS.glob("*.txt"))
        assert quote.strip() and " ".join(quote.split()) in seeds_text
        assert "2 000" in page.locator("#chat").inner_text() or "2000" in page.locator("#chat").inner_text()
        shot = Path(os.environ.get("RAG_SCREENSHOT", tmp_path / "page.png"))
        page.screenshot(path=str(shot), full_page=True)
        # a second question, on a warm model: the wait a user normally sees
        answered = page.locator(BOT).count()
        box.fill("Qui est le PDG de Y Combinator ?")
        asked = time.perf_counter()
        box.press("Enter")
        page.wait_for_function(NEW_TEXT, arg=answered, timeout=60_000)
        warm_first_token_ms = (time.perf_counter() - asked) * 1000
        page.wait_for_function("() => document.querySelector('#chat').innerText.includes('Garry Tan')", timeout=60_000)
        browser.close()
    (tmp_path / "timing.json").write_text(json.dumps({"first_token_ms": first_token_ms, "warm": warm_first_token_ms}))
    print(f"\nbrowser: first streamed token after {first_token_ms:.0f} ms (first question), "
          f"{warm_first_token_ms:.0f} ms (second question)")
