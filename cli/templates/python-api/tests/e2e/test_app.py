"""End-to-end checks of one deployed environment, through the URLs sdeliver passes:
SDELIVER_API_URL, SDELIVER_SITE_URL and SDELIVER_ENV. Standard library only: sdeliver runs
them as `python tests/e2e/test_app.py` (exit 1 when one fails), and pytest runs them too."""

import json
import os
import urllib.request


def url(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set: run these tests through 'sdeliver deploy'")
    return value


def get(address):
    with urllib.request.urlopen(address, timeout=15) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


def get_json(address):
    status, _, body = get(address)
    assert status == 200, f"{address} answered {status}"
    return json.loads(body)


def test_site_serves_its_start_page():
    status, content_type, body = get(url("SDELIVER_SITE_URL"))
    assert status == 200
    assert content_type.startswith("text/html")
    assert b'src="app.js"' in body


def test_config_json_points_the_site_at_this_environment():
    config = get_json(url("SDELIVER_SITE_URL") + "config.json")
    assert {"apiBaseurl", "env", "version"} <= set(config)
    assert config["env"] == url("SDELIVER_ENV")
    assert config["apiBaseurl"].rstrip("/") == url("SDELIVER_API_URL").rstrip("/")


def test_hello_answers_with_a_greeting_and_the_version():
    answer = get_json(url("SDELIVER_API_URL") + "hello?name=e2e")
    assert answer["message"].endswith("e2e!")
    assert answer["version"]


def test_health_is_ok():
    assert get_json(url("SDELIVER_API_URL") + "health")["ok"] is True


def main():
    """Run every test_ function; say which failed and why; exit 1 if any did."""
    failed = 0
    for name, test in sorted(globals().items()):
        if not name.startswith("test_"):
            continue
        try:
            test()
        except Exception as err:  # an assertion, or the URL not answering
            failed += 1
            print(f"FAIL {name}: {type(err).__name__}: {err}")
        else:
            print(f"ok   {name}")
    print(f"{failed} failed" if failed else "all passed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
