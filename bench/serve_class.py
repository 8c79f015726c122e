"""`grader serve` on a class of 300 stored results: how long the class table takes to open and to filter.

Generates 300 results (the stored-result fixtures in turn, under new ids, tests/serve_class.py) into a
temporary store with a roster, overrides and a flagged pair, starts the real server on a free port and
times, over real HTTP on 127.0.0.1:
- the first open of the class table (the store read, parsed and joined once, then rendered: the cold case),
- opening it again (the store unchanged: the cached read),
- filters and a sort (each a fresh GET, as a click is),
- a student's page.
Optionally (--browser) the same in headless Chromium: navigation start to load end, as a TA sees it.
Targets (#18): open under 1 s, filter under 0.2 s.

    .venv/bin/python bench/serve_class.py [--students 300] [--repeat 5] [--browser]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from serve_class import build_class  # noqa: E402

from grader.paths import DEFAULT_RUBRIC  # noqa: E402
from grader.rubric import load_rubric  # noqa: E402
from grader.serve.http import start  # noqa: E402

FILTERS = ("/?status=failed", "/?check=lstm.forward&check_status=failed", "/?flagged=1", "/?overridden=1",
           "/?diagnosis=checks.diag.first_step_logits", "/?sort=score&dir=desc", "/?q=s01")


def timed_get(url: str, cookie: str) -> tuple[float, int]:
    """GET `url` with the token's cookie (`name=value`), as the browser that opened the start URL does."""
    began = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Cookie": cookie}), timeout=60) as response:
        size = len(response.read())
    return time.perf_counter() - began, size


def browser_times(start_url: str, origin: str, repeat: int) -> dict[str, float]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    script = "const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime;"
    try:
        driver.set_window_size(1280, 900)
        driver.get(start_url)  # the token's cookie
        out = {}
        for name, path in (("open", "/"), ("filter", FILTERS[1])):
            samples = []
            for _ in range(repeat):
                driver.get(origin + path)
                samples.append(driver.execute_script(script) / 1000)
            out[name] = statistics.median(samples)
        return out
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--browser", action="store_true", help="also time the pages in headless Chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        began = time.perf_counter()
        klass = build_class(Path(tmp) / "out", args.students)
        print(f"store of {len(klass.ids)} results written in {time.perf_counter() - began:.2f} s")
        running = start(klass.out, "en", load_rubric(DEFAULT_RUBRIC))
        cookie = f"{running.guard.cookie_name}={running.guard.token}"
        try:
            cold, size = timed_get(running.origin + "/", cookie)
            print(f"open, first (store read + render): {cold * 1000:7.1f} ms  ({size // 1024} KiB)")
            warm = [timed_get(running.origin + "/", cookie)[0] for _ in range(args.repeat)]
            print(f"open again, median of {args.repeat}:        {statistics.median(warm) * 1000:7.1f} ms")
            for path in FILTERS:
                times = [timed_get(running.origin + path, cookie)[0] for _ in range(args.repeat)]
                print(f"filter {path:45} {statistics.median(times) * 1000:7.1f} ms (max {max(times) * 1000:.1f})")
            student = [timed_get(f"{running.origin}/student?id={klass.ids[1]}", cookie)[0] for _ in range(args.repeat)]
            print(f"a student's page, median:          {statistics.median(student) * 1000:7.1f} ms")
            if args.browser:
                for name, seconds in browser_times(running.url, running.origin, args.repeat).items():
                    print(f"browser {name} (navigation to load end, median): {seconds * 1000:7.1f} ms")
        finally:
            running.stop()


if __name__ == "__main__":
    main()
