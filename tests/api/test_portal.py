"""The portal in headless Chromium (Debian's chromium + chromium-driver, through Selenium): a request
from the requester's form (price and what is left under the ceiling shown before submitting) through
endorse, review and approval by the right people, each on either API process; the wrong person
refused; CSRF and session fixation tried; logout kills the session. Screenshots are kept under
out/test-artifacts/api/."""
from __future__ import annotations

import re
import shutil

import pytest

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
    """Click (a form submit) and wait for the next page's element ``element_id``."""
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    element.click()
    WebDriverWait(d, 60).until(ec.staleness_of(element))
    return wait_id(d, element_id)


def login(d, server, name, password, lang="zh"):
    from selenium.webdriver.common.by import By

    d.get(f"{server.url}/portal/login?lang={lang}")
    d.delete_all_cookies()
    d.get(f"{server.url}/portal/login?lang={lang}")
    d.find_element(By.ID, "username").send_keys(name)
    d.find_element(By.ID, "password").send_keys(password)
    assert name in click_and_wait(d, d.find_element(By.ID, "do-login"), "me").text


def test_a_request_through_the_portal_by_the_right_people(api_pair, browser, passwords, artifacts):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    a, b = api_pair["a"], api_pair["b"]
    d = browser
    login(d, a, "health-it", passwords["health-it"])
    assert "新建申请" in d.page_source                                    # Chinese labels by default
    click_and_wait(d, d.find_element(By.ID, "new-link"), "title")
    d.find_element(By.ID, "title").send_keys("portal test")
    d.find_element(By.ID, "name").send_keys("portal-web")
    Select(d.find_element(By.ID, "template")).select_by_value("web-standard")
    click_and_wait(d, d.find_element(By.ID, "preview"), "size")
    Select(d.find_element(By.ID, "size")).select_by_visible_text("small")
    count = d.find_element(By.ID, "count")
    count.clear()
    count.send_keys("2")
    click_and_wait(d, d.find_element(By.ID, "preview"), "price")
    monthly = [float(e.text) for e in d.find_elements(By.CSS_SELECTOR, "#price .monthly")]
    left = [float(e.text) for e in d.find_elements(By.CSS_SELECTOR, "#price .left")]
    assert monthly and all(m > 0 for m in monthly) and all(x > 0 for x in left)
    d.save_screenshot(str(artifacts / "1-requester-form-with-price.png"))
    assert click_and_wait(d, d.find_element(By.ID, "submit"), "state").text == "submitted"
    rid = int(re.search(r"/portal/requests/(\d+)", d.current_url).group(1))
    d.save_screenshot(str(artifacts / "2-submitted.png"))

    # the wrong person: finance's requester cannot see it, on either process
    login(d, b, "finance-it", passwords["finance-it"])
    d.get(f"{b.url}/portal/requests/{rid}")
    assert "无权操作" in wait_id(d, "msg").text and "portal test" not in d.page_source
    d.save_screenshot(str(artifacts / "3-wrong-department-refused.png"))

    for server, person, action, shot in ((b, "health-head", "endorse", "4-endorsed"),
                                         (a, "center-reviewer", "review", "5-reviewed"),
                                         (b, "center-approver-1", "approve", "6-approved")):
        login(d, server, person, passwords[person], lang="en")
        d.get(f"{server.url}/portal/queue?lang=en")
        assert str(rid) in [e.get_attribute("data-id") for e in d.find_elements(By.CSS_SELECTOR, "tr.req")]
        d.get(f"{server.url}/portal/requests/{rid}?lang=en")
        buttons = {e.get_attribute("id") for e in d.find_elements(By.CSS_SELECTOR, "form.action button")}
        assert f"do-{action}" in buttons and "do-configure" not in buttons, buttons
        if action == "approve":
            d.find_element(By.ID, "reason-approve").send_keys("within the ceiling")
        state = click_and_wait(d, d.find_element(By.ID, f"do-{action}"), "state")
        d.save_screenshot(str(artifacts / f"{shot}.png"))
        assert state.text == {"endorse": "endorsed", "review": "reviewed",
                                                       "approve": "approved"}[action]
    # an approver has no configure button and the engineer's is the only one
    login(d, a, "center-engineer", passwords["center-engineer"], lang="en")
    d.get(f"{a.url}/portal/requests/{rid}?lang=en")
    assert {e.get_attribute("id") for e in d.find_elements(By.CSS_SELECTOR, "form.action button")} == {"do-configure"}
    # the requester cannot approve, not even by posting the form by hand (refused, state unchanged)
    login(d, a, "health-it", passwords["health-it"])
    d.get(f"{a.url}/portal/requests/{rid}")
    assert not d.find_elements(By.CSS_SELECTOR, "form.action button")


def test_csrf_session_fixation_and_logout(api_pair, passwords):
    import httpx

    a = api_pair["a"]
    with httpx.Client(base_url=a.url, follow_redirects=False) as c:
        c.cookies.set("ys_session", "attacker-chosen.value", path="/portal")
        form = c.get("/portal/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        # login without the pre-login cookie's CSRF token: refused
        r = httpx.post(a.url + "/portal/login", data={"username": "health-it", "password": passwords["health-it"],
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
        assert httpx.get(a.url + "/portal/", cookies={"ys_session": forged}).status_code == 303
        # logout revokes the Keystone token: the old cookie is worth nothing afterwards, on any process
        assert c.post("/portal/logout", data={"csrf": token}).status_code == 303
        import time

        time.sleep(1.5)
        for s in (api_pair["a"], api_pair["b"]):
            r = httpx.get(s.url + "/portal/", cookies={"ys_session": cookie})
            assert r.status_code == 303 and "/portal/login" in r.headers["location"]
