"""The portal in headless Chromium (Debian's chromium + chromium-driver, through Selenium): a request
from the requester's form (price and what is left under the ceiling shown before submitting) through
endorse, review and approval by the right people, each on either API process, then configured (a real
tenant on the devcloud) and published by the engineer, and the department sees it published; the wrong
person refused at every step; CSRF and session fixation tried; logout kills the session. Screenshots are
kept under out/test-artifacts/api/.

The walk-through builds cloud resources, so it runs on the test's own department `yapi-health` (a copy
of the sample's health, tests/own_catalog.py) with its own requester and head in the center's Keystone,
and removes the tenants it made; the sample's departments and projects are never touched."""
from __future__ import annotations

import re
import shutil
import time

import pytest
import yaml

from tests.api.conftest import new_db, start_server, stop_server

pytestmark = pytest.mark.cloud


@pytest.fixture(scope="module")
def passwords(devcloud):
    from yunshang.devcloud.control import people_passwords

    return people_passwords(devcloud.dir)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    exe, drv = shutil.which("chromium"), shutil.which("chromedriver")
    if not exe or not drv:
        pytest.fail("chromium / chromedriver missing: run `bash tools/system-deps.sh` (chromium, chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = exe
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
              "--window-size=1100,1400", f"--user-data-dir={tmp_path_factory.mktemp('chrome')}"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(drv), options=opts)
    d.set_page_load_timeout(90)
    yield d
    d.quit()


def wait_id(d, element_id, timeout=60):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(d, timeout).until(ec.presence_of_element_located((By.ID, element_id)))


def click_and_wait(d, element, element_id):
    """Click (a form submit) and wait for the next page's element ``element_id``. A click that lands
    while Chromium swaps documents ("node does not belong to the document") is retried on the fresh
    element of the same id; the same answer while waiting for the old page to go means it went."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    click_id = element.get_attribute("id")
    for attempt in range(4):
        page = d.find_element(By.TAG_NAME, "html")
        try:
            element.click()
            break
        except (StaleElementReferenceException, WebDriverException) as exc:
            if attempt == 3 or not (isinstance(exc, StaleElementReferenceException)
                                    or "does not belong to the document" in str(exc)):
                raise
            time.sleep(0.5)
            element = wait_id(d, click_id)
    def replaced(_) -> bool:
        # selenium's staleness_of, plus Chromium's other answer for a node of a swapped document
        try:
            page.is_enabled()
            return False
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise

    WebDriverWait(d, 120).until(replaced)
    return wait_id(d, element_id, timeout=120)


def login(d, server, name, password, lang="zh"):
    from selenium.webdriver.common.by import By

    d.get(f"{server.url}/portal/login?lang={lang}")
    d.delete_all_cookies()
    d.get(f"{server.url}/portal/login?lang={lang}")
    d.find_element(By.ID, "username").send_keys(name)
    d.find_element(By.ID, "password").send_keys(password)
    assert name in click_and_wait(d, d.find_element(By.ID, "do-login"), "me").text


T = 120                               # seconds per HTTP call: a loaded shared machine is slow, never wrong
PREFIX = "yapi-"                      # this module's own department: never a sample's
DEPT = PREFIX + "health"


@pytest.fixture(scope="module")
def own(clouds, pg_base, tmp_path_factory, passwords):
    """Two API processes over the sample catalog plus `yapi-health`, its requester and head in the
    center's Keystone (their passwords with the sample people's), and the tenants cleaned up around."""
    from tests.lifecycle.people import clouds_with_department_people
    from tests.own_catalog import own_catalog
    from yunshang.openstack.tenant import destroy_tenant

    catalog = own_catalog(tmp_path_factory.mktemp("catalog") / "prefecture", PREFIX, ("health",))
    people = yaml.safe_load(open(clouds_with_department_people(clouds, DEPT), encoding="utf-8"))["clouds"]
    pw = {**passwords, **{f"{DEPT}-{s}": people[f"person-{DEPT}-{s}"]["auth"]["password"] for s in ("it", "head")}}

    def cleanup():
        for op in ("telecom", "unicom"):
            destroy_tenant(op, op, DEPT, clouds)
    cleanup()
    db = new_db(pg_base)
    logs = tmp_path_factory.mktemp("portal-logs")
    a = start_server(catalog, clouds, db, logs, cache_seconds=1.0)
    b = start_server(catalog, clouds, db, logs, cache_seconds=1.0)
    try:
        yield {"a": a, "b": b, "passwords": pw}
    finally:
        stop_server(a)
        stop_server(b)
        cleanup()


def buttons(d):
    from selenium.webdriver.common.by import By

    return {e.get_attribute("id") for e in d.find_elements(By.CSS_SELECTOR, "form.action button")}


def test_a_request_through_the_portal_from_submit_to_published(own, browser, artifacts):
    import httpx
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    a, b, pw = own["a"], own["b"], own["passwords"]
    d = browser
    login(d, a, f"{DEPT}-it", pw[f"{DEPT}-it"])
    assert "新建申请" in d.page_source                                    # Chinese labels by default
    click_and_wait(d, d.find_element(By.ID, "new-link"), "title")
    d.find_element(By.ID, "title").send_keys("portal test")
    d.find_element(By.ID, "name").send_keys("portal-web")
    Select(d.find_element(By.ID, "template")).select_by_value("web-standard")
    click_and_wait(d, d.find_element(By.ID, "preview"), "size")
    Select(d.find_element(By.ID, "size")).select_by_visible_text("small")
    count = d.find_element(By.ID, "count")
    count.clear()
    count.send_keys("1")
    click_and_wait(d, d.find_element(By.ID, "preview"), "price")
    monthly = [float(e.text) for e in d.find_elements(By.CSS_SELECTOR, "#price .monthly")]
    left = [float(e.text) for e in d.find_elements(By.CSS_SELECTOR, "#price .left")]
    assert monthly and all(m > 0 for m in monthly) and all(x > 0 for x in left)
    d.save_screenshot(str(artifacts / "1-requester-form-with-price.png"))
    assert click_and_wait(d, d.find_element(By.ID, "submit"), "state").text == "submitted"
    rid = int(re.search(r"/portal/requests/(\d+)", d.current_url).group(1))
    d.save_screenshot(str(artifacts / "2-submitted.png"))

    # the wrong person: another department's requester cannot see it, on either process
    login(d, b, "finance-it", pw["finance-it"])
    d.get(f"{b.url}/portal/requests/{rid}")
    assert "无权操作" in wait_id(d, "msg").text and "portal test" not in d.page_source
    d.save_screenshot(str(artifacts / "3-wrong-department-refused.png"))

    steps = ((b, f"{DEPT}-head", "endorse", "endorsed", "4-endorsed"),
             (a, "center-reviewer", "review", "reviewed", "5-reviewed"),
             (b, "center-approver-1", "approve", "approved", "6-approved"),
             (a, "center-engineer", "configure", "configured", "7-configured"),
             (b, "center-engineer", "publish", "published", "8-published"))
    for server, person, action, after, shot in steps:
        login(d, server, person, pw[person], lang="en")
        if action in ("endorse", "review", "approve"):          # the ones that wait on a person: their queue
            d.get(f"{server.url}/portal/queue?lang=en")
            assert str(rid) in [e.get_attribute("data-id") for e in d.find_elements(By.CSS_SELECTOR, "tr.req")]
        d.get(f"{server.url}/portal/requests/{rid}?lang=en")
        wait_id(d, "state")
        assert f"do-{action}" in buttons(d), (action, buttons(d))
        assert not buttons(d) & {f"do-{x}" for _, _, x, _, _ in steps if x != action}, buttons(d)
        if action == "approve":
            d.find_element(By.ID, "reason-approve").send_keys("within the ceiling")
        state = click_and_wait(d, d.find_element(By.ID, f"do-{action}"), "state")
        d.save_screenshot(str(artifacts / f"{shot}.png"))
        assert state.text == after, (action, state.text, d.find_elements(By.ID, "msg") and
                                     d.find_element(By.ID, "msg").text)
        if action == "approve":
            # nobody but the engineer may configure: the requester posting the form by hand is refused
            with httpx.Client(base_url=a.url, follow_redirects=False, timeout=T) as c:
                form = c.get("/portal/login")
                pre = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
                c.post("/portal/login", data={"username": f"{DEPT}-it", "password": pw[f"{DEPT}-it"], "csrf": pre})
                page = c.get(f"/portal/requests/{rid}")
                token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
                assert 'id="do-configure"' not in page.text
                assert c.post(f"/portal/requests/{rid}/configure", data={"csrf": token}).status_code in (403, 404)
                assert c.post(f"/portal/requests/{rid}/publish", data={"csrf": token}).status_code in (403, 404)

    # the department sees its request published, in its list and on the request's page
    login(d, a, f"{DEPT}-it", pw[f"{DEPT}-it"], lang="en")
    rows = {e.get_attribute("data-id"): e.find_element(By.CSS_SELECTOR, ".state").text
            for e in d.find_elements(By.CSS_SELECTOR, "tr.req")}
    assert rows.get(str(rid)) == "published", rows
    d.get(f"{a.url}/portal/requests/{rid}?lang=en")
    assert wait_id(d, "state").text == "published" and not buttons(d)
    d.save_screenshot(str(artifacts / "9-department-sees-published.png"))
    # the tenant is real: the department's project on its primary operator holds the server
    from yunshang.openstack import connect

    conn = connect("unicom", own_clouds(a))
    pid = next(iter(conn.identity.projects(name=f"dept-{DEPT}"))).id
    names = [sv.name for sv in conn.compute.servers(all_projects=True, project_id=pid)]
    assert any("portal-web" in n for n in names), names


def own_clouds(server):
    """The clouds.yaml the API process was started with (its --clouds)."""
    args = server.proc.args
    return args[args.index("--clouds") + 1]


def test_csrf_session_fixation_and_logout(api_pair, passwords):
    import httpx

    a = api_pair["a"]
    with httpx.Client(base_url=a.url, follow_redirects=False, timeout=T) as c:
        c.cookies.set("ys_session", "attacker-chosen.value", path="/portal")
        form = c.get("/portal/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        # login without the pre-login cookie's CSRF token: refused
        r = httpx.post(a.url + "/portal/login", timeout=T, data={"username": "health-it",
                                                                 "password": passwords["health-it"],
                                                                 "csrf": "forged"})
        assert r.status_code == 403
        r = c.post("/portal/login", data={"username": "health-it", "password": "wrong", "csrf": csrf})
        assert r.status_code == 401
        r = c.post("/portal/login", data={"username": "health-it", "password": passwords["health-it"], "csrf": csrf})
        assert r.status_code == 303
        cookie = r.cookies.get("ys_session")
        assert cookie and cookie != "attacker-chosen.value"               # a fresh session, not the planted one
        set_cookie = r.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie
        page = c.get("/portal/new")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        doc = {"title": "csrf", "name": "csrf-web", "template": "web-standard", "size": "small", "count": "1",
               "do": "submit"}
        assert c.post("/portal/new", data={**doc, "csrf": "forged"}).status_code == 403
        assert c.post("/portal/new", data=doc).status_code == 403
        r = c.post("/portal/new", data={**doc, "csrf": token})
        assert r.status_code == 303 and "/portal/requests/" in r.headers["location"]
        # a cookie with a forged signature is no session
        forged = cookie[:-4] + ("0000" if not cookie.endswith("0000") else "1111")
        assert httpx.get(a.url + "/portal/", cookies={"ys_session": forged}, timeout=T).status_code == 303
        # logout revokes the Keystone token: the old cookie is worth nothing afterwards, on any process
        assert c.post("/portal/logout", data={"csrf": token}).status_code == 303
        import time

        time.sleep(1.5)
        for s in (api_pair["a"], api_pair["b"]):
            r = httpx.get(s.url + "/portal/", cookies={"ys_session": cookie}, timeout=T)
            assert r.status_code == 303 and "/portal/login" in r.headers["location"]
