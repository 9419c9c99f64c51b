"""The web console against a real `berth up`: its files as served, and a headless Chromium
that signs in, creates, edits and tests functions and reads their logs, as a person would."""
from __future__ import annotations

import io
import json
import re
import zipfile

import httpx
from berth_process import SECRET_KEY, BerthProcess
from console.chromium import Chromium
from console.session import screenshot, sign_in, signed_in, wait_text
from lambda_packages import ROLE, zip_of

from berth.console.app import STATIC_DIR

ASSETS = {p.name: "javascript" if p.suffix == ".js" else "text/css"
          for p in sorted(STATIC_DIR.iterdir()) if p.suffix in (".js", ".css")}

CREATE_CODE = '''import json


def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    print("greeting", event["name"])
    return {"greeting": "hello " + event["name"], "fn": context.function_name}
'''


def package_files(berth: BerthProcess, name: str) -> dict[str, bytes]:
    location = berth.client("lambda").get_function(FunctionName=name)["Code"]["Location"]
    with zipfile.ZipFile(io.BytesIO(httpx.get(location, timeout=10).content)) as archive:
        return {n: archive.read(n) for n in archive.namelist()}


def test_page_and_assets_are_served_with_their_types(berth_up: BerthProcess) -> None:
    with berth_up.http() as http:
        bare = http.get("/console")
        assert bare.status_code in (307, 308)
        assert bare.headers["location"].endswith("/console/")
        page = http.get("/console/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp
        assert "form-action 'none'" in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert '<script type="module" src="console.js">' in page.text
        for name, kind in ASSETS.items():
            asset = http.get(f"/console/{name}")
            assert asset.status_code == 200, name
            assert kind in asset.headers["content-type"], (name, asset.headers["content-type"])
            assert asset.content == (STATIC_DIR / name).read_bytes()
            assert SECRET_KEY not in asset.text
            cached = http.get(f"/console/{name}", headers={"if-none-match": asset.headers["etag"]})
            assert cached.status_code == 304
        assert SECRET_KEY not in page.text
        assert http.get("/console/missing.js").status_code == 404
        assert http.get("/console/../credentials.json").status_code != 200
        # The API beside it still refuses unsigned requests.
        assert http.get("/2015-03-31/functions/").status_code == 403


def test_wrong_secret_is_refused_and_nothing_is_kept(berth_up: BerthProcess,
                                                    browser: Chromium) -> None:
    sign_in(browser, berth_up, secret="not-the-secret")
    error = wait_text(browser, "#signin-error", "failed")
    assert "InvalidSignatureException" in error
    assert browser.evaluate("sessionStorage.length") == 0
    assert browser.evaluate("document.getElementById('app-view').hidden") is True


def test_create_a_python_function_and_test_it(berth_up: BerthProcess,
                                               browser: Chromium) -> None:
    signed_in(browser, berth_up)
    browser.fill("#fn-name", "console-hello")
    assert browser.evaluate("document.getElementById('fn-handler').value") == "app.handler"
    browser.fill("#code", CREATE_CODE)
    browser.click("#deploy")
    wait_text(browser, "#status", "^Created console-hello")
    wait_text(browser, "#function-list", "console-hello")

    browser.fill("#event", '{"name": "browser"}')
    browser.click("#test")
    status = wait_text(browser, "#result-status", "Succeeded")
    assert "status 200" in status
    assert json.loads(browser.text("#result-payload")) == {
        "greeting": "hello browser", "fn": "console-hello"}
    log = wait_text(browser, "#result-log", "REPORT RequestId")
    assert re.search(r"^START RequestId: \S+ Version: \$LATEST$", log, re.MULTILINE)
    assert "greeting browser" in log
    assert re.search(r"^END RequestId: ", log, re.MULTILINE)
    assert re.search(r"^REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration", log, re.MULTILINE)
    request_id = re.search(r"^REPORT RequestId: (\S+)", log, re.MULTILINE).group(1)  # type: ignore[union-attr]
    # The recent-logs view shows the invocation once its logs are shipped.
    wait_text(browser, "#logs", f"REPORT RequestId: {request_id}")
    assert "greeting browser" in browser.text("#logs")

    browser.fill("#event", '{"fail": true}')
    browser.click("#test")
    assert "Unhandled" in wait_text(browser, "#result-status", "Failed")
    failure = json.loads(browser.text("#result-payload"))
    assert (failure["errorType"], failure["errorMessage"]) == ("ValueError", "asked to fail")

    screenshot(browser, "function-editor")

    # What the browser built is a real package: a stored zip with the code as typed.
    config = berth_up.client("lambda").get_function(FunctionName="console-hello")["Configuration"]
    assert (config["Runtime"], config["Handler"]) == ("python3.12", "app.handler")
    assert package_files(berth_up, "console-hello") == {"app.py": CREATE_CODE.encode()}


def test_edit_an_existing_function_keeps_its_other_files(berth_up: BerthProcess,
                                                         browser: Chromium) -> None:
    lam = berth_up.client("lambda")
    helper = b"PREFIX = 'from helper'\n"
    original = "import helper\n\ndef handler(event, context):\n    return helper.PREFIX\n"
    lam.create_function(FunctionName="console-edit", Runtime="python3.12", Role=ROLE,
                        Handler="app.handler",
                        Code={"ZipFile": zip_of({"app.py": original, "helper.py": helper})})
    signed_in(browser, berth_up)
    browser.click("#function-list button[data-name='console-edit']")
    browser.wait_for("document.getElementById('code').value.includes('helper.PREFIX')")
    assert browser.evaluate("document.getElementById('code').value") == original
    assert "app.py (1 of 2 files)" in browser.text("#editor-file")
    # The editor shows the function's own role, not the new-function default, and keeps it.
    assert browser.evaluate("document.getElementById('fn-role').value") == ROLE

    edited = ("import helper\n\ndef handler(event, context):\n"
              "    return {'edited': helper.PREFIX, 'n': event['n'] * 2}\n")
    browser.fill("#code", edited)
    browser.click("#deploy")
    wait_text(browser, "#status", "^Deployed console-edit")
    browser.fill("#event", '{"n": 21}')
    browser.click("#test")
    wait_text(browser, "#result-status", "Succeeded")
    assert json.loads(browser.text("#result-payload")) == {"edited": "from helper", "n": 42}
    assert package_files(berth_up, "console-edit") == {"helper.py": helper,
                                                       "app.py": edited.encode()}
    assert lam.get_function_configuration(FunctionName="console-edit")["Role"] == ROLE

    # A reload keeps the session (sessionStorage) and reopens the function from the URL.
    browser.navigate("about:blank")
    browser.navigate(f"{berth_up.endpoint}/console/#fn=console-edit")
    browser.wait_for("document.getElementById('code').value.includes(\"'edited'\")")
    assert browser.text("#editor-title") == "console-edit"


def test_create_a_nodejs_function(berth_up: BerthProcess, browser: Chromium) -> None:
    signed_in(browser, berth_up)
    browser.evaluate("(() => { const s = document.getElementById('fn-runtime');"
                     " s.value = 'nodejs20.x'; s.dispatchEvent(new Event('change')); })()")
    assert browser.evaluate("document.getElementById('fn-handler').value") == "index.handler"
    assert "exports.handler" in browser.evaluate("document.getElementById('code').value")
    browser.fill("#fn-name", "console-node")
    browser.click("#deploy")
    wait_text(browser, "#status", "^Created console-node")
    browser.click("#test")
    wait_text(browser, "#result-status", "Succeeded")
    assert json.loads(browser.text("#result-payload")) == {
        "statusCode": 200, "body": "hello from console-node"}
    assert "REPORT RequestId" in browser.text("#result-log")
    assert set(package_files(berth_up, "console-node")) == {"index.js"}
