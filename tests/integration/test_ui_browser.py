"""The Dagster UI in a real browser: Debian's headless Chromium, driven by Playwright.

``dagster dev`` serves the code location as ``mesh dev`` does (``exec_dagster_dev``), with a
private ``MESH_HOME``/``DAGSTER_HOME`` on a free port. Loading definitions does no network I/O, so
every demo product shows without the Kafka/Flink stack. Full-page screenshots land in
``<project>/.mesh/artifacts/ui/`` (each path is printed); a failing step saves the page's
screenshot and HTML there too and names both in its assertion message.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from datamesh.process import free_port, wait_until
from datamesh.stack import dagster_dev
from datamesh.stack.paths import PROJECT_ROOT

pytestmark = pytest.mark.integration

# Debian's chromium package (scripts/ensure-system-deps.sh): `playwright install` downloads
# browsers from outside, which this build environment cannot reach.
CHROMIUM = Path(os.environ.get("MESH_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = PROJECT_ROOT / ".mesh" / "artifacts" / "ui"
TIMEOUT_MS = 60_000  # the UI on two shared cores, next to dagster dev's daemon, is slow
VIEWPORT: ViewportSize = {"width": 1800, "height": 1400}

# The demo domains (mesh_assets/domains/*/products.yaml) and their owners as the UI shows them:
# a `team:` owner by its team name, a user by e-mail.
OWNERS = {
    "studio": ("studio-eng",),
    "content": ("content-platform", "content-data@example.com"),
    "analytics": ("studio-analytics",),
}
PRODUCTS = {
    "studio": ("movies", "productions", "movie_catalog", "movies_history", "talent"),
    "content": ("artwork", "localized_titles", "title_catalog", "localized_titles_serving"),
    "analytics": (
        "productions_started_daily",
        "productions_started_daily_table",
        "productions_daily_serving",
        "talent_credits",
    ),
}
KEYS = [f"{domain}/{name}" for domain, names in PRODUCTS.items() for name in names]


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """``.mesh/artifacts/ui/``, emptied so it holds this run's screenshots only."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    print(f"\n[ui] screenshots go to {ARTIFACTS}")
    return ARTIFACTS


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mesh dev``'s ``dagster dev`` with a private home; yields its URL once assets load.

    It gets no other ``MESH_*`` variable: it shows the demo domains, and its daemon (sensors,
    automation) must not reach a deployment the session points at — the UI needs no service.
    """
    home = tmp_path_factory.mktemp("ui-mesh-home")
    port, log = free_port(), home / "dagster-dev.log"
    code = f"from datamesh.stack import dagster_dev; dagster_dev.exec_dagster_dev({port})"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MESH_HOME", str(home))  # dagster_dev.stop() finds the PID there
        mp.setenv("DAGSTER_HOME", str(home / "dagster"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESH_")}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-c", code],
                env={**env, "MESH_HOME": str(home)},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until("dagster", lambda: _demo_loaded(url), 180, log, proc.pid)
            _graphql(url, "mutation { setNuxSeen }")  # no "Join the community" dialog on top
            yield url
        finally:
            dagster_dev.stop(lambda line: None)
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            if proc.poll() is None:
                proc.kill()


def _graphql(url: str, query: str) -> Any:
    reply = requests.post(f"{url}/graphql", json={"query": query}, timeout=10)
    reply.raise_for_status()
    return reply.json()["data"]


def _demo_loaded(url: str) -> bool:
    try:
        nodes = _graphql(url, "{ assetNodes { assetKey { path } } }")["assetNodes"]
    except (requests.RequestException, KeyError, TypeError, ValueError):
        return False
    return set(KEYS) <= {"/".join(node["assetKey"]["path"]) for node in nodes}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium from Debian; missing, it fails (never skips) and names the fix."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run `make install` (scripts/ensure-system-deps.sh "
            "installs Debian's chromium), or point MESH_CHROMIUM at a Chromium binary"
        )
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, dagster_ui: str) -> Iterator[Page]:
    """A fresh browser context on the UI (relative ``goto`` paths, generous timeouts)."""
    context = browser.new_context(base_url=dagster_ui, viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


@contextmanager
def evidence(page: Page, artifacts: Path, step: str) -> Iterator[None]:
    """Run one UI step; if it fails, save the page (PNG + HTML) and name both in the error."""
    try:
        yield
    except (AssertionError, PlaywrightError) as exc:
        png, html = artifacts / f"FAILED-{step}.png", artifacts / f"FAILED-{step}.html"
        with suppress(PlaywrightError):
            page.screenshot(path=png, full_page=True)
            html.write_text(page.content())
        print(f"[ui] failure evidence: {png} {html}")
        raise AssertionError(
            f"{step} failed at {page.url}\n  screenshot: {png}\n  page HTML: {html}\n{exc}"
        ) from exc


def snapshot(page: Page, artifacts: Path, name: str) -> Path:
    """A full-page screenshot in the artifacts directory; prints where it went.

    It waits a while for the page's "Loading..." placeholders (statuses arrive after the
    definitions) so the picture shows them, but that is cosmetic, never a failure.
    """
    with suppress(AssertionError):
        expect(page.get_by_text("Loading...", exact=True)).to_have_count(0, timeout=20_000)
    path = artifacts / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    print(f"[ui] screenshot: {path}")
    return path


def shown(locator: Locator) -> None:
    expect(locator).to_be_visible(timeout=TIMEOUT_MS)


def asset_link(page: Page, key: str) -> Locator:
    return page.locator(f'a[href="/assets/{key}"]')


def section(page: Page, title: str) -> Locator:
    """The block under a section title of an asset page ("Owners", "Upstream assets")."""
    return page.get_by_text(title, exact=True).first.locator("xpath=..")


def test_asset_graph_shows_every_domain_and_every_product(page: Page, artifacts: Path) -> None:
    # three groups stacked: tall enough that the graph draws every node (it renders only the
    # nodes inside the viewport)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 3200})
    with evidence(page, artifacts, "asset-graph"):
        page.goto("/asset-groups")  # "Lineage": the global asset graph, one box per group
        for domain in PRODUCTS:
            shown(page.get_by_text(domain, exact=True).first)
        shown(page.get_by_role("img", name="zoom_out"))  # the graph itself has rendered
        page.keyboard.press("Alt+KeyE")  # "Expand all groups" (⌥E in the graph's menu)
        for name in {name for names in PRODUCTS.values() for name in names}:
            shown(page.get_by_text(name, exact=True).first)
        for _ in range(2):  # zoom out so both groups and the edge between them fit
            page.get_by_role("img", name="zoom_out").click()
    snapshot(page, artifacts, "asset-graph")


def test_catalog_lists_every_demo_product(page: Page, artifacts: Path) -> None:
    with evidence(page, artifacts, "catalog"):
        page.goto("/assets")
        for key in KEYS:
            shown(asset_link(page, key))
    snapshot(page, artifacts, "catalog")


@pytest.mark.parametrize(
    ("domain", "owner"), [(domain, owner) for domain, owners in OWNERS.items() for owner in owners]
)
def test_catalog_filtered_by_owner_shows_that_domains_products(
    page: Page, artifacts: Path, domain: str, owner: str
) -> None:
    step, selection = f"catalog-owner-{owner}", f'owner:"{owner}"'
    ours = [key for key in KEYS if key.startswith(f"{domain}/")]
    with evidence(page, artifacts, step):
        page.goto(f"/assets?asset-selection={quote(selection)}")  # the catalog's search box
        for key in ours:
            shown(asset_link(page, key))
        for key in set(KEYS) - set(ours):  # checked once the list has loaded
            expect(asset_link(page, key)).to_have_count(0)
    snapshot(page, artifacts, step)


@pytest.mark.parametrize(
    "key", ["studio/movies", "content/localized_titles", "analytics/productions_started_daily"]
)
def test_asset_page_shows_the_owners(page: Page, artifacts: Path, key: str) -> None:
    step = f"asset-{key.replace('/', '-')}"
    with evidence(page, artifacts, step):
        page.goto(f"/assets/{key}")
        owners = section(page, "Owners")
        for owner in OWNERS[key.split("/")[0]]:
            expect(owners).to_contain_text(owner, timeout=TIMEOUT_MS)
    snapshot(page, artifacts, step)


def test_cross_domain_edge_studio_movies_feeds_content_localized_titles(
    page: Page, artifacts: Path
) -> None:
    with evidence(page, artifacts, "upstream-list-content-localized_titles"):
        page.goto("/assets/content/localized_titles")
        upstream = section(page, "Upstream assets")
        shown(upstream.locator('a[href="/assets/studio/movies"]'))
        shown(upstream.locator('a[href="/assets/content/artwork"]'))
    with evidence(page, artifacts, "lineage-content-localized_titles"):
        # the asset's upstream lineage, one hop: only its direct inputs are drawn
        page.goto(
            "/assets/content/localized_titles?view=lineage&lineageScope=upstream&lineageDepth=1"
        )
        for label in ("studio", "content", "movies", "artwork", "localized_titles"):
            shown(page.get_by_text(label, exact=True).first)
    snapshot(page, artifacts, "lineage-content-localized_titles-upstream")


def test_cross_domain_edge_studio_productions_feeds_analytics(page: Page, artifacts: Path) -> None:
    with evidence(page, artifacts, "upstream-list-analytics-productions_started_daily"):
        page.goto("/assets/analytics/productions_started_daily")
        upstream = section(page, "Upstream assets")
        shown(upstream.locator('a[href="/assets/studio/productions"]'))
        downstream = section(page, "Downstream assets")
        for sink in ("productions_started_daily_table", "productions_daily_serving"):
            shown(downstream.locator(f'a[href="/assets/analytics/{sink}"]'))
    snapshot(page, artifacts, "analytics-productions_started_daily")


def test_checks_tab_lists_the_slo_checks(page: Page, artifacts: Path) -> None:
    with evidence(page, artifacts, "checks-studio-movies"):
        page.goto("/assets/studio/movies?view=checks")
        listed = page.get_by_text(re.compile(r"^Checks \(\d+\)$"))
        none = page.get_by_text("No checks defined for this asset")
        shown(listed.or_(none).first)  # the tab has loaded, either way
        snapshot(page, artifacts, "checks-studio-movies")
        assert not none.is_visible(), (
            "studio/movies has no asset checks in the UI: its SLO checks (freshness, lag, "
            "schema) should be defined by the asset factory"
        )
        for check in ("freshness", "schema"):
            shown(page.get_by_text(check, exact=True).first)
