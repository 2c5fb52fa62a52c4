"""The fleet dashboard in a real browser: Debian's headless Chromium, driven by Selenium
through Debian's chromedriver, against the live server, the real database and the real
RabbitMQ, with a real STOMP-over-WebSocket client as the agent.

Set SAVE_DASHBOARD_SCREENSHOT=1 to write the connected state to docs/dashboard.png.
"""

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import stomp
from rest_framework.authtoken.models import Token
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from marketplace.names import AgentServiceState
from tests.factories import (
    CustomerFactory,
    OfferingFactory,
    UserFactory,
)
from tests.kit.fleet import Fleet
from tests.kit.network import free_port
from tests.kit.paths import ROOT
from tests.kit.polling import wait_until
from tests.kit.real_broker import provision_agent, publish
from tests.kit.services import require_service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1360,720",
)
SCREENSHOT = ROOT / "docs" / "dashboard.png"
PASSWORD = "a-long-browser-test-password"
# The broker lists a new connection after 3-5 s and refreshes queue depths every ~5 s.
WAIT_SECONDS = 25
NO_VALUE = "\N{EN DASH}"
BROKER_DOWN = "RabbitMQ cannot be asked: RabbitMQ management API is unreachable"
# Computed background colours (getComputedStyle) of the badges, the warning and the banner.
CONNECTED_GREEN = "rgb(46, 125, 50)"
DISCONNECTED_RED = "rgb(198, 40, 40)"
STALLED_AMBER = "rgb(255, 179, 0)"

# Reads one agent row in a single script, so a refresh swapping the table in between
# cannot tear the reading apart.
READ_ROW = """
const row = document.querySelector(`tr[data-agent-uuid="${arguments[0]}"]`);
if (!row) { return null; }
const badge = row.querySelector(".fleet-badge");
const text = (selector) => [...row.querySelectorAll(selector)].map((el) => el.textContent.trim());
const classes = (selector) => [...row.querySelectorAll(selector)].map((el) => el.className);
return {
  connected: row.dataset.connected,
  badge: badge.textContent.trim(),
  badge_colour: getComputedStyle(badge).backgroundColor,
  since: row.querySelector(".fleet-agent__since").textContent.trim(),
  ip: row.querySelector(".fleet-agent__ip").textContent.trim(),
  services: text(".fleet-state"),
  service_classes: classes(".fleet-state"),
  queues: text(".fleet-queue"),
  queue_classes: classes(".fleet-queue"),
  queue_colours: [...row.querySelectorAll(".fleet-queue")].map(
    (el) => getComputedStyle(el).backgroundColor),
  links: [...row.querySelectorAll("a")].map((el) => new URL(el.href).pathname),
  timeline_query: [...row.querySelectorAll("a")].map((el) => new URL(el.href).search).pop(),
};
"""


@pytest.fixture
def browser(tmp_path) -> Iterator[WebDriver]:
    """Debian's headless Chromium with a throwaway profile; never a downloaded browser."""
    require_service(
        CHROMIUM.is_file() and CHROMEDRIVER.is_file(),
        f"{CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)",
    )
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _with_password(user: Any) -> Any:
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def browser_fleet(transactional_db, real_broker, settings):
    """Two provisioned agents of one owner, and a staff, a support and a plain user.

    The dashboard refreshes every second from a fresh broker snapshot.
    """
    settings.BROKER_SNAPSHOT_TTL = 0
    settings.DASHBOARD_REFRESH_SECONDS = 1
    owner = UserFactory(username="site-owner")
    offering = OfferingFactory(
        name="HPC cluster", customer=CustomerFactory(name="Example University", owners=[owner])
    )
    fleet = Fleet()
    hpc = fleet.add_agent(
        "slurm-agent-hpc",
        offering=offering,
        created_by=owner,
        services={
            "order_process": AgentServiceState.ACTIVE,
            "membership_sync": AgentServiceState.IDLE,
        },
    )
    gpu = fleet.add_agent(
        "slurm-agent-gpu",
        offering=offering,
        created_by=owner,
        services={"order_process": AgentServiceState.ERROR},
    )
    hpc_sub, hpc_queue = provision_agent(hpc, owner=owner, object_type="order")
    _, gpu_queue = provision_agent(gpu, owner=owner, object_type="resource")
    return {
        "owner_token": Token.objects.get(user=owner).key,
        "vhost": owner.uuid.hex,
        "hpc": (hpc, hpc_sub, hpc_queue),
        "gpu": (gpu, gpu_queue),
        "staff": _with_password(UserFactory(username="ops", is_staff=True, is_superuser=True)),
        "support": _with_password(UserFactory(username="helpdesk", is_support=True)),
        "plain": _with_password(UserFactory(username="someone")),
    }


def sign_in(browser: WebDriver, live_server: Any, username: str) -> None:
    """Open the dashboard, get sent to the admin login form, and sign in there."""
    browser.get(f"{live_server.url}/admin/fleet/")
    assert urlsplit(browser.current_url).path == "/admin/login/"
    browser.find_element(By.ID, "id_username").send_keys(username)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()


def read_row(browser: WebDriver, identity: Any) -> dict[str, Any] | None:
    return browser.execute_script(READ_ROW, str(identity.uuid))


def connect_agent(fleet: dict[str, Any]) -> stomp.WSStompConnection:
    """The hpc agent's consumer: STOMP over WebSocket, logged in as its subscription."""
    _, subscription, queue = fleet["hpc"]
    client = stomp.WSStompConnection(
        host_and_ports=[("127.0.0.1", 15674)], ws_path="/ws", vhost=fleet["vhost"]
    )
    client.connect(login=subscription.uuid.hex, passcode=fleet["owner_token"], wait=True)
    client.subscribe(destination=f"/amq/queue/{queue.queue_name}", id="orders", ack="client")
    return client


def png_size(image: bytes) -> tuple[int, int]:
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", image[16:24])


def test_staff_watch_an_agent_connect_and_disconnect_and_the_broker_go_away(
    live_server, browser_fleet, browser, settings, tmp_path
):
    hpc = browser_fleet["hpc"][0]
    gpu, gpu_queue = browser_fleet["gpu"]

    # given staff signed in through the admin login form, on the dashboard
    sign_in(browser, live_server, "ops")
    wait_until(
        lambda: urlsplit(browser.current_url).path == "/admin/fleet/",
        timeout=WAIT_SECONDS,
        interval=0.25,
        message="the login lands on the dashboard",
    )
    assert browser.title == "Fleet dashboard | Django site admin"
    initial = read_row(browser, hpc)
    assert initial is not None
    assert initial["connected"] == "false"
    # and a marker that a page reload would wipe
    browser.execute_script("window.fleetTestMarker = 'no reload';")

    # when the hpc agent connects over STOMP and three orders wait for the gpu agent
    ws = connect_agent(browser_fleet)
    try:
        for number in range(3):
            publish(
                vhost=browser_fleet["vhost"],
                queue_name=gpu_queue.queue_name,
                payload=f'{{"n": {number}}}',
            )

        # then the page shows it connected and consuming, and the gpu agent's queue piling
        # up, by itself (the broker reports queue counts a few seconds after connections)
        def is_connected_and_piled_up() -> bool:
            row, gpu_row = read_row(browser, hpc), read_row(browser, gpu)
            return bool(
                row
                and row["connected"] == "true"
                and row["queues"] == ["order: 0 msg / 1 consumer"]
                and gpu_row
                and gpu_row["queues"] == ["resource: 3 msg / 0 consumers"]
            )

        wait_until(
            is_connected_and_piled_up,
            timeout=WAIT_SECONDS,
            interval=0.25,
            message="hpc consuming, gpu queue piling up",
        )
        row = read_row(browser, hpc)
        assert row is not None
        assert row["badge"] == "connected"
        assert row["badge_colour"] == CONNECTED_GREEN
        assert row["ip"] == "127.0.0.1"
        assert row["since"].endswith("ago")
        assert " UTC" in row["since"]
        assert row["services"] == ["membership_sync IDLE", "order_process ACTIVE"]
        assert row["service_classes"] == [
            "fleet-state fleet-state--idle",
            "fleet-state fleet-state--active",
        ]
        assert row["queues"] == ["order: 0 msg / 1 consumer"]
        assert row["queue_classes"] == ["fleet-queue"]
        assert row["links"] == [
            f"/admin/marketplace/agentidentity/{hpc.pk}/change/",
            f"/admin/marketplace/agentidentity/{hpc.pk}/change/",
            "/admin/marketplace/agentconnectionevent/",
        ]
        assert row["timeline_query"] == f"?identity__uuid={hpc.uuid}"
        gpu_row = read_row(browser, gpu)
        assert gpu_row is not None
        assert gpu_row["badge"] == "disconnected"
        assert gpu_row["badge_colour"] == DISCONNECTED_RED
        assert gpu_row["queues"] == ["resource: 3 msg / 0 consumers"]
        assert gpu_row["queue_colours"] == [STALLED_AMBER]
        assert gpu_row["services"] == ["order_process ERROR"]
        screenshot = browser.get_screenshot_as_png()
        viewport = browser.execute_script(
            "return [window.innerWidth * devicePixelRatio, window.innerHeight * devicePixelRatio];"
        )
    finally:
        ws.disconnect()

    assert list(png_size(screenshot)) == viewport
    (tmp_path / "dashboard.png").write_bytes(screenshot)
    if os.environ.get("SAVE_DASHBOARD_SCREENSHOT") == "1":
        SCREENSHOT.write_bytes(screenshot)

    # when the STOMP client has gone, then the agent turns disconnected without a reload
    wait_until(
        lambda: (read_row(browser, hpc) or {}).get("connected") == "false",
        timeout=WAIT_SECONDS,
        interval=0.25,
        message="hpc disconnected",
    )
    row = read_row(browser, hpc)
    assert row is not None
    assert row["badge"] == "disconnected"
    assert row["badge_colour"] == DISCONNECTED_RED
    assert row["since"] == NO_VALUE
    assert row["ip"] == NO_VALUE
    assert browser.execute_script("return window.fleetTestMarker;") == "no reload"

    # when the broker's management API stops answering
    settings.RABBITMQ_MANAGEMENT_URL = f"http://127.0.0.1:{free_port()}"

    # then a red banner replaces the table, still without a reload
    def read_banner() -> dict[str, str] | None:
        return browser.execute_script(
            "const el = document.querySelector('.fleet-banner--broker-down');"
            "return el && {text: el.textContent.trim(),"
            " colour: getComputedStyle(el).backgroundColor};"
        )

    wait_until(
        lambda: read_banner() is not None,
        timeout=WAIT_SECONDS,
        interval=0.25,
        message="the broker-down banner",
    )
    assert read_banner() == {"text": BROKER_DOWN, "colour": DISCONNECTED_RED}
    assert browser.find_elements(By.ID, "fleet-agents") == []
    assert browser.find_elements(By.CSS_SELECTOR, ".fleet-agent") == []
    assert browser.execute_script("return window.fleetTestMarker;") == "no reload"


def test_support_signs_in_and_reads_the_fleet_but_a_plain_user_cannot(
    live_server, browser_fleet, browser
):
    hpc, gpu = browser_fleet["hpc"][0], browser_fleet["gpu"][0]

    # when a user who is neither staff nor support tries the admin login form
    sign_in(browser, live_server, "someone")

    # then the form refuses them
    assert urlsplit(browser.current_url).path == "/admin/login/"
    assert "Please enter the correct username and password for a staff account" in (
        browser.find_element(By.CSS_SELECTOR, ".errornote").text
    )

    # when a support user who is not staff signs in on the same form
    browser.delete_all_cookies()
    sign_in(browser, live_server, "helpdesk")
    wait_until(
        lambda: urlsplit(browser.current_url).path == "/admin/fleet/",
        timeout=WAIT_SECONDS,
        interval=0.25,
        message="the login lands on the dashboard",
    )

    # then they read both agents, without links into the staff-only admin
    rows = {identity.name: read_row(browser, identity) for identity in (hpc, gpu)}
    assert {name: row and row["badge"] for name, row in rows.items()} == {
        "slurm-agent-hpc": "disconnected",
        "slurm-agent-gpu": "disconnected",
    }
    assert [row and row["links"] for row in rows.values()] == [[], []]
    assert browser.find_element(By.ID, "logout-form").get_attribute("action") == (
        f"{live_server.url}/api-auth/logout/"
    )
