//! End-to-end page tests in headless Chromium (dev-only).
//!
//! [`Harness::start`] spawns Debian's `chromedriver` on a free loopback port (killed when the
//! harness is dropped); [`Harness::session`] opens a headless Chromium session through WebDriver
//! (`fantoccini`) with a fresh profile, so two sessions are two different people (no shared
//! cookies). A [`Browser`] is blocking (it drives its own small runtime), so tests read top to
//! bottom; every wait has a timeout and polls the page, never sleeps.
//!
//! Artifacts: [`Browser::screenshot`] writes `target/browser-artifacts/<test>/<nn>-<name>.png`
//! (numbered across the harness's sessions, in the order taken); a failed wait saves one too.
//! [`Browser::axe`] runs axe-core 4.10.2 (`fixtures/axe/axe.min.js`, MPL-2.0) in the page,
//! injected through WebDriver's Execute Script (not subject to the page's CSP, which forbids
//! inline scripts) and fails listing every `serious` or `critical` violation.
//!
//! A machine without `chromium` or `chromedriver` fails the test with a message naming
//! `scripts/setup.sh`, which installs them; it never skips.

#![forbid(unsafe_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// How long a wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);
/// How often a wait looks at the page.
const POLL: Duration = Duration::from_millis(50);

const AXE: &str = include_str!("../../fixtures/axe/axe.min.js");

/// Why the browser could not be started.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(
        "{0} was not found: the page tests need Debian's `chromium` and `chromium-driver`; run scripts/setup.sh (it installs them)"
    )]
    Missing(&'static str),
    #[error("chromedriver did not start: {0}")]
    Driver(String),
    #[error("could not open a browser session: {0}")]
    Session(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running chromedriver and the artifacts directory of one test.
pub struct Harness {
    driver: Child,
    port: u16,
    chromium: PathBuf,
    artifacts: PathBuf,
    shots: Arc<AtomicU32>,
    profiles: Vec<tempfile::TempDir>,
}

fn find_program(names: &[&'static str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n))).find(|p| p.is_file())
}

/// `target/browser-artifacts/<test>` (or under `CARGO_TARGET_DIR`).
fn artifacts_dir(test: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        crate_dir.parent().unwrap_or(crate_dir).join("target")
    });
    target.join("browser-artifacts").join(test)
}

impl Harness {
    /// Start chromedriver for test `test` (its artifacts directory is emptied first).
    pub fn start(test: &str) -> Result<Self, HarnessError> {
        let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"])
            .ok_or(HarnessError::Missing("chromium"))?;
        let chromedriver = find_program(&["chromedriver"]).ok_or(HarnessError::Missing("chromedriver"))?;
        let artifacts = artifacts_dir(test);
        let _ = std::fs::remove_dir_all(&artifacts);
        std::fs::create_dir_all(&artifacts)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut harness =
            Self { driver, port, chromium, artifacts, shots: Arc::new(AtomicU32::new(0)), profiles: vec![] };
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = harness.driver.try_wait() {
                return Err(HarnessError::Driver(format!("it exited with {status}")));
            }
            if Instant::now() > deadline {
                return Err(HarnessError::Driver(format!("nothing listens on port {port} after {WAIT:?}")));
            }
            std::thread::sleep(POLL);
        }
        eprintln!("browser artifacts: {}", harness.artifacts.display());
        Ok(harness)
    }

    /// [`start`](Self::start), failing the test with the reason.
    pub fn new(test: &str) -> Self {
        Self::start(test).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Where this test's screenshots go.
    pub fn artifacts(&self) -> &Path {
        &self.artifacts
    }

    /// A new headless Chromium with a fresh profile (another person), 1280×900.
    pub fn session(&mut self, name: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("a profile directory: {e}"));
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,900".into(),
            "--no-first-run".into(),
            "--lang=ru".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities
            .insert("goog:chromeOptions".into(), json!({ "binary": self.chromium.to_string_lossy(), "args": args }));
        self.profiles.push(profile);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("a runtime for the browser: {e}"));
        let url = format!("http://127.0.0.1:{}", self.port);
        let client = runtime
            .block_on(async {
                let mut builder = ClientBuilder::rustls().map_err(|e| HarnessError::Session(e.to_string()))?;
                builder.capabilities(capabilities).connect(&url).await.map_err(|e| HarnessError::Session(e.to_string()))
            })
            .unwrap_or_else(|e| panic!("{e}"));
        Browser {
            client: Some(client),
            runtime,
            name: name.to_owned(),
            artifacts: self.artifacts.clone(),
            shots: self.shots.clone(),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One browser session (one person), blocking.
pub struct Browser {
    client: Option<Client>,
    runtime: tokio::runtime::Runtime,
    name: String,
    artifacts: PathBuf,
    shots: Arc<AtomicU32>,
}

/// A serious or critical accessibility violation that axe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: String,
    pub impact: String,
    pub help: String,
    pub targets: Vec<String>,
}

impl Browser {
    fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open until drop")
    }

    fn block<T, E: std::fmt::Display>(&self, what: &str, f: impl std::future::Future<Output = Result<T, E>>) -> T {
        match self.runtime.block_on(f) {
            Ok(v) => v,
            Err(e) => {
                let shot = self.failure_shot(what);
                panic!("[{}] {what}: {e} (screenshot: {shot})", self.name)
            }
        }
    }

    fn failure_shot(&self, what: &str) -> String {
        let name: String = what.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(40).collect();
        match self.try_screenshot(&format!("FAILED-{name}")) {
            Ok(p) => p.display().to_string(),
            Err(e) => format!("none: {e}"),
        }
    }

    /// One poll interval of a wait.
    fn pause(&self) {
        self.runtime.block_on(async { tokio::time::sleep(POLL).await });
    }

    /// Open `url` and wait until it has loaded.
    pub fn goto(&self, url: &str) {
        self.block(&format!("goto {url}"), self.client().goto(url));
    }

    /// The address of the page shown.
    pub fn url(&self) -> String {
        self.block("current url", self.client().current_url()).to_string()
    }

    /// Wait until an element matching `selector` is in the page; it is returned.
    pub fn wait(&self, selector: &str) -> fantoccini::elements::Element {
        let client = self.client();
        self.block(
            &format!("wait for {selector}"),
            client.wait().at_most(WAIT).every(POLL).for_element(Locator::Css(selector)),
        )
    }

    /// Wait until the element matching `selector` contains `text`; its whole text is returned.
    pub fn wait_text(&self, selector: &str, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut last = String::new();
        loop {
            if let Ok(element) = self.runtime.block_on(self.client().find(Locator::Css(selector))) {
                if let Ok(t) = self.runtime.block_on(element.text()) {
                    if t.contains(text) {
                        return t;
                    }
                    last = t;
                }
            }
            if Instant::now() > deadline {
                let shot = self.failure_shot(&format!("text {selector}"));
                panic!(
                    "[{}] {selector} did not come to contain {text:?} within {WAIT:?}; it shows {last:?} at {} (screenshot: {shot})",
                    self.name,
                    self.url()
                );
            }
            self.pause();
        }
    }

    /// Wait until the page's address path is `path` (after a form's redirect).
    pub fn wait_path(&self, path: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.url();
            if url::Url::parse(&url).is_ok_and(|u| u.path() == path) {
                return;
            }
            if Instant::now() > deadline {
                let shot = self.failure_shot(&format!("path {path}"));
                panic!("[{}] still at {url}, not at {path}, after {WAIT:?} (screenshot: {shot})", self.name);
            }
            self.pause();
        }
    }

    /// The text of the element matching `selector` (waiting for it).
    pub fn text(&self, selector: &str) -> String {
        let element = self.wait(selector);
        self.block(&format!("text of {selector}"), element.text())
    }

    /// An attribute of the element matching `selector`.
    pub fn attr(&self, selector: &str, attribute: &str) -> Option<String> {
        let element = self.wait(selector);
        self.block(&format!("{attribute} of {selector}"), element.attr(attribute))
    }

    /// Whether an element matches `selector` now (no wait).
    pub fn exists(&self, selector: &str) -> bool {
        self.runtime.block_on(self.client().find(Locator::Css(selector))).is_ok()
    }

    /// Type `text` into the field matching `selector` (cleared first).
    pub fn fill(&self, selector: &str, text: &str) {
        let element = self.wait(selector);
        self.block(&format!("clear {selector}"), element.clear());
        self.block(&format!("type into {selector}"), element.send_keys(text));
    }

    /// Type `text` into the field whose `<label>` reads `label` (exactly, trimmed).
    pub fn fill_label(&self, label: &str, text: &str) {
        let selector = self.labelled(label);
        self.fill(&selector, text);
    }

    /// The CSS selector of the control labelled `label`.
    pub fn labelled(&self, label: &str) -> String {
        let xpath = format!("//label[normalize-space(.)={}]", xpath_literal(label));
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let element = self.block(
                &format!("label {label:?}"),
                self.client().wait().at_most(WAIT).every(POLL).for_element(Locator::XPath(&xpath)),
            );
            // The page may replace the label between the look-up and the read (a script updating
            // the form): a stale element is looked up again, within the same wait.
            match self.runtime.block_on(element.attr("for")) {
                Ok(Some(id)) => return format!("#{id}"),
                Ok(None) => panic!("[{}] the label {label:?} names no control (no for=)", self.name),
                Err(_) if std::time::Instant::now() < deadline => self.pause(),
                Err(e) => {
                    let shot = self.failure_shot(&format!("for of label {label:?}"));
                    panic!("[{}] for of label {label:?}: {e} (screenshot: {shot})", self.name)
                }
            }
        }
    }

    /// Click the element matching `selector`.
    pub fn click(&self, selector: &str) {
        let element = self.wait(selector);
        self.block(&format!("click {selector}"), element.click());
    }

    /// Click the button or link whose text is `text` (exactly, trimmed).
    pub fn click_text(&self, text: &str) {
        let literal = xpath_literal(text);
        let xpath = format!("//button[normalize-space(.)={literal}] | //a[normalize-space(.)={literal}]");
        let element = self.block(
            &format!("find {text:?}"),
            self.client().wait().at_most(WAIT).every(POLL).for_element(Locator::XPath(&xpath)),
        );
        self.block(&format!("click {text:?}"), element.click());
    }

    /// Press keys in the focused element (WebDriver key codes, e.g. "\u{E004}" for Tab).
    pub fn keys(&self, keys: &str) {
        let element = self.block("the focused element", self.client().active_element());
        self.block("send keys", element.send_keys(keys));
    }

    /// Run `script` in the page (WebDriver Execute Script) with `args`.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.block("execute script", self.client().execute(script, args))
    }

    /// Save a screenshot as `<nn>-<name>.png`; its path is returned.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        self.try_screenshot(name).unwrap_or_else(|e| panic!("[{}] screenshot {name}: {e}", self.name))
    }

    fn try_screenshot(&self, name: &str) -> Result<PathBuf, String> {
        let png = self.runtime.block_on(self.client().screenshot()).map_err(|e| e.to_string())?;
        let n = self.shots.fetch_add(1, Ordering::SeqCst) + 1;
        let path = self.artifacts.join(format!("{n:02}-{name}.png"));
        std::fs::write(&path, png).map_err(|e| e.to_string())?;
        Ok(path)
    }

    /// Run axe-core on the page; fails listing every serious or critical violation (rule,
    /// impact, target selectors). `name` says which page in the message.
    pub fn axe(&self, name: &str) {
        let violations = self.axe_violations();
        if !violations.is_empty() {
            let list: Vec<String> = violations
                .iter()
                .map(|v| format!("  {} ({}): {} at {}", v.rule, v.impact, v.help, v.targets.join(", ")))
                .collect();
            let shot = self.failure_shot(&format!("axe {name}"));
            panic!(
                "[{}] axe found serious or critical violations on {name} ({}):\n{}\n(screenshot: {shot})",
                self.name,
                self.url(),
                list.join("\n")
            );
        }
    }

    /// The serious and critical violations axe-core finds on the page.
    pub fn axe_violations(&self) -> Vec<Violation> {
        // Injected through Execute Script: the page's CSP (script-src 'self') does not apply.
        let injected = self.execute(&format!("{AXE}\n;return typeof window.axe === 'object';"), vec![]);
        assert_eq!(injected, json!(true), "[{}] axe-core could not be injected", self.name);
        let script = r#"
            const done = arguments[arguments.length - 1];
            window.axe.run(document, { resultTypes: ["violations"] })
              .then(r => done({ ok: r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                  targets: v.nodes.map(n => n.target.join(" ")) })) }))
              .catch(e => done({ error: String(e) }));
        "#;
        let result = self.block("axe.run", self.client().execute_async(script, vec![]));
        if let Some(error) = result.get("error") {
            panic!("[{}] axe.run failed: {error}", self.name);
        }
        result["ok"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .map(|v| Violation {
                rule: v["id"].as_str().unwrap_or_default().to_owned(),
                impact: v["impact"].as_str().unwrap_or_default().to_owned(),
                help: v["help"].as_str().unwrap_or_default().to_owned(),
                targets: v["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect(),
            })
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
    }
}

/// `text` as an XPath string literal (XPath 1.0 has no escapes: concat() around quotes).
fn xpath_literal(text: &str) -> String {
    if !text.contains('"') {
        format!("\"{text}\"")
    } else if !text.contains('\'') {
        format!("'{text}'")
    } else {
        let parts: Vec<String> = text.split('"').map(|p| format!("\"{p}\"")).collect();
        format!("concat({})", parts.join(", '\"', "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xpath_literals_survive_quotes() {
        assert_eq!(xpath_literal("Войти"), "\"Войти\"");
        assert_eq!(xpath_literal("a \"b\""), "'a \"b\"'");
        assert_eq!(xpath_literal("a \"b\" 'c'"), "concat(\"a \", '\"', \"b\", '\"', \" 'c'\")");
    }

    /// The harness itself: a page under a CSP that forbids inline scripts, axe injected and
    /// finding an unlabelled field (so a clean result elsewhere means something), screenshots.
    #[test]
    fn axe_runs_under_a_strict_csp_and_finds_what_is_wrong() {
        let page = |body: &'static str| {
            move || async move {
                (
                    [
                        ("content-security-policy", "default-src 'self'; script-src 'self'; style-src 'self'"),
                        ("content-type", "text/html; charset=utf-8"),
                    ],
                    body,
                )
            }
        };
        let good = "<!doctype html><html lang=\"ru\"><head><title>t</title></head><body><main><h1>Вход</h1>\
                    <label for=\"a\">ИИН</label><input id=\"a\"><script>document.title='inline ran'</script></main></body></html>";
        let bad = "<!doctype html><html lang=\"ru\"><head><title>t</title></head><body><main><h1>x</h1>\
                   <input id=\"a\"><img src=\"data:,\"></main></body></html>";
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new()
            .route("/good", axum::routing::get(page(good)))
            .route("/bad", axum::routing::get(page(bad)));
        runtime.spawn(async move { axum::serve(listener, app).await });

        let mut harness = Harness::new("harness-self-test");
        let browser = harness.session("tester");
        browser.goto(&format!("http://127.0.0.1:{port}/good"));
        browser.fill_label("ИИН", "123");
        // The CSP held: the inline script did not run.
        assert_eq!(browser.execute("return document.title", vec![]), json!("t"));
        assert!(browser.axe_violations().is_empty());
        browser.axe("good");
        let shot = browser.screenshot("good");
        assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"));
        assert!(shot.ends_with("01-good.png"), "{}", shot.display());

        browser.goto(&format!("http://127.0.0.1:{port}/bad"));
        let rules: Vec<String> = browser.axe_violations().into_iter().map(|v| v.rule).collect();
        assert!(rules.contains(&"label".to_owned()) && rules.contains(&"image-alt".to_owned()), "{rules:?}");
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| browser.axe("bad")));
        let message = *refused.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains("label (critical)") && message.contains("#a"), "{message}");
    }
}
