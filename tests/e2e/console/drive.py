"""Drives the web console in headless Chromium (Debian's chromium + chromium-driver) through
WebDriver: sign in, run `git status` in `demo` and see its output arrive, cancel a long command,
see a refusal with its reason, see HTML in output shown as text, the plugins and audit views,
sign out. Usage: RDEV_URL=… RDEV_TOKEN=… python3 drive.py [SCREENSHOT.png]"""

import os
import sys

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

URL, TOKEN = os.environ["RDEV_URL"], os.environ["RDEV_TOKEN"]
SCREENSHOT = sys.argv[1] if len(sys.argv) > 1 else None


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"]:
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def main():
    driver = browser()
    wait = WebDriverWait(driver, 60)
    by_id = lambda name: driver.find_element(By.ID, name)  # noqa: E731

    def run(kind, text):
        Select(by_id("kind")).select_by_value(kind)
        box = by_id("text")
        box.clear()
        box.send_keys(text)
        by_id("run").click()

    def output_has(text):
        wait.until(lambda d: text in d.find_element(By.ID, "output").text)

    def open_demo():
        # The list is drawn again after each load: a button found before may be replaced.
        steady = WebDriverWait(driver, 60, ignored_exceptions=[StaleElementReferenceException])
        steady.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "button[data-project='demo']"))).click()
        wait.until(lambda d: d.find_element(By.ID, "project").is_displayed())

    def state_is(prefix):
        wait.until(lambda d: d.find_element(By.ID, "command-state").text.startswith(prefix))

    try:
        driver.get(URL + "/console")
        by_id("token").send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
        open_demo()
        assert driver.execute_script("return window.sessionStorage.getItem('rdev.token')") == TOKEN

        run("git", "status")
        output_has("On branch")
        state_is("succeeded")
        assert not by_id("cancel").is_displayed(), "an ended command cannot be cancelled"

        run("shell", "echo started; sleep 60")
        output_has("started")
        by_id("cancel").click()
        state_is("cancelled")

        run("shell", "ls; rm -rf /")
        wait.until(lambda d: "denied by" in d.find_element(By.ID, "error").text)

        run("shell", "echo '<script>window.pwned = 1</script><b>bold</b>'; printf '\\033[31mred\\033[0m\\n'")
        output_has("<script>window.pwned = 1</script><b>bold</b>")
        output_has("red")
        assert "\x1b" not in by_id("output").text, "ANSI escapes are stripped"
        assert driver.execute_script("return window.pwned") is None, "output never runs as script"
        assert not driver.find_elements(By.CSS_SELECTOR, "#output script, #output b"), "output is text"
        wait.until(lambda d: "cancelled" in d.find_element(By.ID, "history").text)

        driver.find_element(By.CSS_SELECTOR, "button[data-view='plugins']").click()
        wait.until(lambda d: "shell-sanitizer" in d.find_element(By.ID, "plugin-table").text)
        driver.find_element(By.CSS_SELECTOR, "button[data-view='audit']").click()
        by_id("audit-action").send_keys("command.rejected")
        driver.find_element(By.CSS_SELECTOR, "#audit-form button").click()
        wait.until(lambda d: "command.rejected" in d.find_element(By.ID, "audit-table").text)
        if SCREENSHOT:
            driver.find_element(By.CSS_SELECTOR, "button[data-view='projects']").click()
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#project-list li"))
            open_demo()
            run("git", "log --oneline")
            output_has("Initial commit")
            state_is("succeeded")
            driver.save_screenshot(SCREENSHOT)

        by_id("sign-out").click()
        wait.until(lambda d: d.find_element(By.ID, "signin").is_displayed())
        assert driver.execute_script("return window.sessionStorage.getItem('rdev.token')") is None
        console_errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "Content Security Policy" in e["message"]]
        assert not console_errors, console_errors
        print("ok")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
