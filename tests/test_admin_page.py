"""The admin page (GET /admin) driven in headless Chromium against the running test gateway, and the
JSON endpoints it reads (usage series, policy, drift) over HTTP.

The browser test needs Debian's `chromium` and `chromium-driver` (`make system-deps` installs them
as root); without them it fails and says so rather than skipping. Its screenshots are kept in
tests/artifacts/admin/ (or $TURNOUT_TEST_ARTIFACTS/admin/), one per step.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from router.http.admin_page import bucket_start
from tests.conftest import ADMIN_KEY, ROOT, RunningGateway

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("TURNOUT_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts") / "admin"
WAIT_S = 15.0  # the longest any step waits for the page
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def browser() -> Iterator[Any]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(
            f"the admin page test needs Chromium and its driver, missing: {', '.join(missing)}. "
            "Install them with `make system-deps` (as root) or `apt-get install chromium chromium-driver`."
        )
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # script errors, CSP refusals
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def _user_key(gateway: RunningGateway, name: str) -> tuple[str, str]:
    created = httpx.post(gateway.base_url + "/v1/admin/keys", json={"name": name}, headers=ADMIN).json()
    return created["id"], created["key"]


class Page:
    """The admin page in the browser: finding, typing, waiting (bounded) and screenshots."""

    def __init__(self, driver: Any, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url
        self.shots: list[Path] = []

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def wait(self, what: str, ready: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = ready()
            except Exception as error:  # an element not there yet, or replaced while read
                value, last = None, error
            if value:
                return value
            time.sleep(0.1)
        self.shot("timeout-" + what.replace(" ", "-").replace("'", ""))
        pytest.fail(f"the admin page did not show {what} within {timeout_s} s (last error: {last!r})")

    def click(self, css: str) -> None:
        button = self.find(css)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        button.click()

    def type(self, css: str, text: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(text)

    def visible_text(self, css: str) -> str:
        element = self.find(css)
        return str(element.text) if element.is_displayed() else ""

    def shot(self, name: str, section: str | None = None) -> None:
        if section is not None:
            self.driver.execute_script("arguments[0].scrollIntoView()", self.find(section))
        path = ARTIFACTS / f"{len(self.shots) + 1:02d}-{name}.png"
        assert self.driver.save_screenshot(str(path)), path
        self.shots.append(path)

    def usage_requests(self, route: str) -> int:
        """The requests the by-route table counts for `route` (0 when it has no column)."""
        headers = [cell.text for cell in self.all("#usage-route table thead th")]
        if route not in headers:
            return 0
        column = headers.index(route)
        rows = self.all("#usage-route table tbody tr")
        return sum(int(row.find_elements("css selector", "td")[column].text.replace(",", "")) for row in rows)


def test_the_admin_page_in_a_browser(gateway: RunningGateway, browser: Any) -> None:
    page = Page(browser, gateway.base_url)
    browser.get(gateway.base_url + "/admin")
    page.wait("the login form", lambda: page.find("#login-form").is_displayed())
    assert not page.find("#console").is_displayed()
    page.shot("login")

    # a wrong key: the gateway's 401 message is shown, and nothing else is
    page.type("#login-key", "tnt_" + "x" * 43)
    page.click("#login-form button")
    error = page.wait("the wrong key's error", lambda: page.visible_text("#login-error"))
    assert "401" in error and "Unknown or revoked API key" in error
    assert not page.find("#console").is_displayed()
    page.shot("wrong-key")
    _, user_key = _user_key(gateway, f"page-user-{uuid.uuid4().hex[:6]}")
    page.type("#login-key", user_key)
    page.click("#login-form button")
    page.wait("a user key's 403", lambda: "403" in page.visible_text("#login-error"))
    assert "admin key" in page.visible_text("#login-error")

    # log in: the key is kept in sessionStorage only, never in the URL or a cookie
    page.type("#login-key", ADMIN_KEY)
    page.click("#login-form button")
    page.wait("the keys table", lambda: page.all("#keys-table tbody tr"))
    assert page.find("#console").is_displayed() and not page.find("#login").is_displayed()
    assert browser.execute_script("return sessionStorage.getItem('turnout-admin-key')") == ADMIN_KEY
    assert ADMIN_KEY not in browser.current_url and browser.get_cookies() == []
    page.shot("logged-in")

    # create a key through the form: shown once, then listed with its team and limits
    name = f"page-key-{uuid.uuid4().hex[:8]}"
    page.type("#key-form input[name=name]", name)
    page.type("#key-form input[name=team]", "admin-page-team")
    page.type("#key-form input[name=rpm]", "60")
    page.type("#key-form input[name=budget]", "5")
    page.click("#key-form button")
    new_key = page.wait("the new key", lambda: page.visible_text("#new-key-value"))
    assert new_key.startswith("tnt_") and name in page.visible_text("#new-key-name")
    row = page.wait(
        "the new key's row", lambda: [r for r in page.all("#keys-table tbody tr") if name in r.text]
    )
    assert "admin-page-team" in row[0].text and "60 req/min, 5 USD/month" in row[0].text
    assert "active" in row[0].text
    listed = httpx.get(gateway.base_url + "/v1/admin/keys", headers=ADMIN).json()["data"]
    key_id = next(key["id"] for key in listed if key["name"] == name)
    assert row[0].get_attribute("data-id") == key_id
    page.shot("key-created", "#keys")
    page.type("#team-form input[name=name]", "admin-page-team")
    page.type("#team-form input[name=budget]", "50")
    page.click("#team-form button")
    team = page.wait("the team's row", lambda: page.all("#teams-table tr[data-team='admin-page-team']"))
    assert "50 USD/month" in team[0].text
    assert team[0].find_elements("css selector", "td")[1].text == "1"  # the key just created
    page.shot("team-limits", "#teams")

    # a request with that key appears in the usage section
    raw = gateway.client(new_key).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Hello! How are you today?"}]
    )
    route = raw.headers["x-turnout-route"]
    assert raw.http_response.status_code == 200 and route
    before = page.usage_requests(route)  # the page has not reloaded since it logged in: before the request

    def counted() -> bool:
        page.click("#usage button.refresh")
        time.sleep(0.3)
        return page.usage_requests(route) > before

    page.wait(f"the request on route {route} in usage", counted)
    totals = re.match(r"([0-9,]+) requests?, ([0-9,]+) tokens?", page.visible_text("#usage-totals"))
    assert totals and int(totals[1].replace(",", "")) >= 1 and int(totals[2].replace(",", "")) > 0
    assert page.find("#usage-route svg.chart rect") is not None
    assert route in page.visible_text("#usage-route ul.legend")
    page.shot("usage", "#usage")
    spent = httpx.get(gateway.base_url + f"/v1/usage?by=key&key={key_id}&since=1d", headers=ADMIN).json()
    cost = spent["totals"]["cost_usd"]
    shown = "$0" if cost == 0 else f"${cost:.6f}" if cost < 0.01 else f"${cost:.2f}"
    page.click("#keys button.refresh")
    cells = f"#keys-table tr[data-id='{key_id}'] td.num"
    page.wait("the key's spend today", lambda: [c.text for c in page.all(cells)] == [shown, shown])

    # explain a query: the same route and category as the API answers
    query = "Write a Python function that merges two sorted lists"
    page.type("#explain-query", query)
    page.click("#explain-form button")
    page.wait("the explanation", lambda: page.visible_text("#explain-route"))
    asked = httpx.post(gateway.base_url + "/v1/route/explain", json={"query": query}, headers=ADMIN).json()
    assert page.visible_text("#explain-route") == asked["route"]
    assert page.visible_text("#explain-category").startswith(asked["signals"]["capability"]["category"])
    assert asked["signals"]["capability"]["category"] == "code"
    assert len(page.all("#explain-routes > li")) == len(asked["routes_tried"])
    page.shot("explain", "#explain")

    # the live policy's version, and a rejected edit highlighted
    version = gateway.services.gateway.runtime.loaded.version
    assert page.visible_text("#policy-version") == version
    assert "backends:" in page.find("#policy-text").text and not page.find("#policy-rejected").is_displayed()
    page.shot("policy", "#policy")
    path = Path(gateway.settings.policy)
    original = path.read_text()
    try:
        path.write_text(original.replace("routes:", "routez:"))

        def rejected() -> bool:
            page.click("#policy button.refresh")
            time.sleep(0.3)
            return page.find("#policy-rejected").is_displayed()

        page.wait("the rejected edit", rejected)
        assert "routez: unknown key" in page.visible_text("#policy-error")
        assert page.visible_text("#policy-version") == version  # still running the last good one
        assert "not the running policy" in page.visible_text("#policy-text-note")
        page.shot("policy-rejected", "#policy")
    finally:
        path.write_text(original)
        _wait_policy(gateway, error=False)

    # drift: one row per routing signal, with its status
    from router.ops.drift import SIGNALS

    page.click("#drift-form button")
    page.wait("the drift table", lambda: len(page.all("#drift-table tbody tr[data-signal]")) == len(SIGNALS))

    def current_requests() -> int:
        found = re.search(r"Current .+? UTC: ([0-9,]+) requests?\.", page.visible_text("#drift-windows"))
        return int(found[1].replace(",", "")) if found else 0

    page.wait("the chat request in drift's current window", lambda: current_requests() >= 1)
    statuses = [cell.text for cell in page.all("#drift-table td.status")]
    assert set(statuses) <= {"stable", "watch", "act", "too few rows"}
    page.shot("drift", "#drift")

    # values are written as text: a key named like markup is shown as it is named
    markup = f'<b id="xss">{uuid.uuid4().hex[:6]}</b>'
    httpx.post(gateway.base_url + "/v1/admin/keys", json={"name": markup}, headers=ADMIN)
    page.click("#keys button.refresh")
    page.wait(
        "the markup-named key", lambda: [c for c in page.all("#keys-table td.name") if c.text == markup]
    )
    assert page.all("#xss") == []

    # revoke the key from the page, then log out: the key leaves sessionStorage
    page.click(f"#keys-table tr[data-id='{key_id}'] button.revoke")
    browser.switch_to.alert.accept()
    page.wait("the revoked key", lambda: "revoked" in page.find(f"#keys-table tr[data-id='{key_id}']").text)
    page.shot("key-revoked", "#keys")
    page.click("#logout")
    page.wait("the login form again", lambda: page.find("#login-form").is_displayed())
    assert browser.execute_script("return sessionStorage.getItem('turnout-admin-key')") is None
    page.shot("logged-out")

    # no script error and nothing the Content-Security-Policy refused (the API's 401s and 403s above
    # are logged by the browser as failed loads, which is what they are)
    logged = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert [m for m in logged if "Failed to load resource" not in m] == []
    for shot in page.shots:
        assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot
    assert len(page.shots) >= 9


def _wait_policy(gateway: RunningGateway, *, error: bool, timeout_s: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        policy: dict[str, Any] = httpx.get(gateway.base_url + "/v1/admin/policy", headers=ADMIN).json()
        if (policy["error"] is not None) == error or time.monotonic() > deadline:
            assert (policy["error"] is not None) == error, policy
            return policy
        time.sleep(0.1)


def test_the_page_is_public_static_and_locked_down(gateway: RunningGateway) -> None:
    page = httpx.get(gateway.base_url + "/admin")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/admin/app.js"' in page.text and ADMIN_KEY not in page.text
    script = httpx.get(gateway.base_url + "/admin/app.js")
    assert script.headers["content-type"].startswith("text/javascript") and "innerHTML" not in script.text
    assert httpx.get(gateway.base_url + "/admin/style.css").headers["content-type"].startswith("text/css")
    assert httpx.get(gateway.base_url + "/admin/../pyproject.toml").status_code == 404
    missing = httpx.get(gateway.base_url + "/admin/secret.txt")
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "asset"
    assert "/admin" not in httpx.get(gateway.base_url + "/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    "path", ["/v1/admin/usage/series", "/v1/admin/policy", "/v1/admin/drift?reference=7d&current=1d"]
)
def test_the_new_endpoints_are_for_the_admin_key_only(gateway: RunningGateway, path: str) -> None:
    url = gateway.base_url + path
    anonymous = httpx.get(url)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "missing_api_key"
    _, key = _user_key(gateway, f"not-admin-{uuid.uuid4().hex[:6]}")
    user = httpx.get(url, headers={"authorization": f"Bearer {key}"})
    assert user.status_code == 403 and user.json()["error"]["code"] == "admin_only"
    assert httpx.get(url, headers=ADMIN).status_code == 200


def test_the_series_groups_ledger_rows_by_bucket_route_and_backend(
    gateway: RunningGateway, pg_url: str
) -> None:
    import psycopg

    tag = uuid.uuid4().hex[:8]
    route_a, route_b, backend_x, backend_y = (f"{name}-{tag}" for name in ("ra", "rb", "bx", "by"))
    hour = bucket_start(datetime.now(UTC) - timedelta(hours=3), timedelta(hours=1))
    assert hour.minute == 0 and hour.second == 0 and hour.microsecond == 0
    rows = [  # (ts, route, backend, status, prompt, completion, cost)
        (hour + timedelta(minutes=5), route_a, backend_x, 200, 10, 5, 0.001),
        (hour + timedelta(minutes=55), route_a, backend_y, 200, 20, 7, 0.002),
        (hour + timedelta(minutes=59, seconds=59), route_b, backend_y, 502, 1, 0, 0.0),
        (hour + timedelta(hours=1), route_a, backend_x, 200, 3, 4, 0.004),  # the next bucket's first moment
    ]
    with psycopg.connect(pg_url, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO turnout_usage (ts, key_id, route, backend, model, stream, status, prompt_tokens,"
            " completion_tokens, cost_usd, latency_ms, overhead_ms) "
            "VALUES (%s, 'series-test', %s, %s, 'auto', false, %s, %s, %s, %s, 1, 1)",
            rows,
        )
    answer = httpx.get(gateway.base_url + "/v1/admin/usage/series?since=6h&bucket=1h", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "usage.series" and body["bucket_seconds"] == 3600
    first, second = hour.isoformat(), (hour + timedelta(hours=1)).isoformat()
    assert first in body["buckets"] and second in body["buckets"] and len(body["buckets"]) in (6, 7)
    assert all(b.endswith(":00:00+00:00") for b in body["buckets"])

    def mine(dimension: str, names: set[str]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(p["bucket"], p[dimension]): p for p in body["by_" + dimension] if p.get(dimension) in names}

    by_route = mine("route", {route_a, route_b})
    assert set(by_route) == {(first, route_a), (first, route_b), (second, route_a)}
    assert by_route[(first, route_a)] | {"bucket": None, "route": None} == {
        "bucket": None,
        "route": None,
        "requests": 2,
        "errors": 0,
        "prompt_tokens": 30,
        "completion_tokens": 12,
        "tokens": 42,
        "cost_usd": 0.003,
    }
    assert by_route[(first, route_b)]["errors"] == 1 and by_route[(second, route_a)]["tokens"] == 7
    assert all("backend" not in point for point in by_route.values())
    by_backend = mine("backend", {backend_x, backend_y})
    assert {k: v["requests"] for k, v in by_backend.items()} == {
        (first, backend_x): 1,
        (first, backend_y): 2,
        (second, backend_x): 1,
    }
    assert by_backend[(first, backend_y)]["cost_usd"] == 0.002

    daily = httpx.get(gateway.base_url + "/v1/admin/usage/series?since=2d&bucket=1d", headers=ADMIN).json()
    points = [p for p in daily["by_route"] if p.get("route") == route_a]
    assert sum(p["requests"] for p in points) == 3
    assert all(p["bucket"].endswith("T00:00:00+00:00") for p in points)


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("since=yesterday", "since"),
        ("since=7d&bucket=0m", "bucket"),
        ("since=30d&bucket=1m", "bucket"),  # 43,200 buckets
        ("since=9999999d", "since"),
    ],
)
def test_the_series_refuses_bad_windows(gateway: RunningGateway, query: str, param: str) -> None:
    answer = httpx.get(gateway.base_url + "/v1/admin/usage/series?" + query, headers=ADMIN)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == param, answer.text


def test_the_policy_endpoint_shows_the_file_and_a_rejected_edit(gateway: RunningGateway) -> None:
    path = Path(gateway.settings.policy)
    original = path.read_text()
    live = _wait_policy(gateway, error=False)
    ready = httpx.get(gateway.base_url + "/readyz").json()["policy"]
    assert (live["version"], live["path"]) == (ready["version"], ready["path"])
    assert live["text"] == original and live["live"] is True and live["file_version"] == live["version"]
    assert live["error_at"] is None
    try:
        path.write_text(original.replace("routes:", "routez:"))
        broken = _wait_policy(gateway, error=True)
        assert "routez: unknown key" in broken["error"] and broken["version"] == live["version"]
        assert broken["live"] is False and broken["text"].count("routez:") == 1
        written = datetime.fromisoformat(broken["error_at"])
        assert abs((datetime.now(UTC) - written).total_seconds()) < 60
    finally:
        path.write_text(original)
        _wait_policy(gateway, error=False)


def test_drift_over_http_is_the_ops_report(gateway: RunningGateway) -> None:
    from router.ops.drift import SIGNALS

    answer = httpx.get(gateway.base_url + "/v1/admin/drift?reference=2d&current=1h", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert [s["signal"] for s in report["signals"]] == list(SIGNALS)
    start, end = (datetime.fromisoformat(report[name]) for name in ("reference_start", "current_end"))
    assert timedelta(days=2, minutes=59) < end - start < timedelta(days=2, hours=1, minutes=1)
    bad = httpx.get(gateway.base_url + "/v1/admin/drift?reference=-1d", headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "reference"
