//! A real browser for the dashboard tests: Debian's Chromium, headless, driven over the
//! DevTools protocol (`chromiumoxide`). A missing Chromium fails the test (`cargo xtask test`
//! installs it).

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::js_protocol::runtime::EventExceptionThrown;
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::{Page, ScreenshotParams};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where screenshots go, for a person to look at: `target/dashboard-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|p| p.join("dashboard-screenshots"))
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots")
        });
    std::fs::create_dir_all(&dir).expect("creating the screenshot directory");
    dir
}

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "Chromium not found (/usr/bin/chromium): the dashboard's browser tests need it (apt-get install chromium; `cargo xtask test` installs it)"
    );
}

/// A headless Chromium with a fresh profile, closed (and its profile removed) on drop.
pub struct Chromium {
    pub browser: Browser,
    errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    handler: tokio::task::JoinHandle<()>,
    profile: PathBuf,
}

impl Chromium {
    pub async fn launch(test: &str) -> Chromium {
        let profile = std::env::temp_dir().join(format!(
            "rollouts-chromium-{test}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("a Chromium profile directory");
        let viewport = Viewport {
            width: 1400,
            height: 1000,
            ..Default::default()
        };
        // Without these, Chromium's own connections (updates, sync, QUIC) are refused on a
        // closed network and slow everything down.
        let config = BrowserConfig::builder()
            .chrome_executable(chromium())
            .disable_default_args()
            .no_sandbox()
            .user_data_dir(&profile)
            .window_size(1400, 1000)
            .viewport(viewport)
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(60))
            .args([
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--disable-extensions",
                "--password-store=basic",
                "--use-mock-keychain",
            ])
            .build()
            .expect("a Chromium configuration");
        let (browser, mut handler) = Browser::launch(config)
            .await
            .unwrap_or_else(|e| panic!("launching Chromium: {e}"));
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Chromium {
            browser,
            errors: Default::default(),
            handler,
            profile,
        }
    }

    /// A new tab at `url`. Uncaught JavaScript exceptions of the page fail the test (see
    /// [`no_errors`]).
    pub async fn open(&self, url: &str) -> Page {
        let page = self
            .browser
            .new_page("about:blank")
            .await
            .unwrap_or_else(|e| panic!("opening a tab: {e}"));
        let mut exceptions = page
            .event_listener::<EventExceptionThrown>()
            .await
            .expect("listening to the page's exceptions");
        let errors = self.errors.clone();
        tokio::spawn(async move {
            while let Some(e) = exceptions.next().await {
                let d = &e.exception_details;
                let text = d
                    .exception
                    .as_ref()
                    .and_then(|x| x.description.clone())
                    .unwrap_or_else(|| d.text.clone());
                errors
                    .lock()
                    .unwrap()
                    .push(format!("{text} ({}:{})", d.line_number, d.column_number));
            }
        });
        page.goto(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
        page
    }

    /// Panics if a page threw an uncaught exception.
    pub fn no_errors(&self) {
        let errors = self.errors.lock().unwrap();
        assert!(errors.is_empty(), "the page threw: {errors:#?}");
    }

    pub async fn close(mut self) {
        self.no_errors();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.browser.close()).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.browser.wait()).await;
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        self.handler.abort();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Evaluates a JavaScript expression in the page (promises are awaited).
pub async fn eval<T: DeserializeOwned>(page: &Page, js: &str) -> T {
    page.evaluate(js)
        .await
        .unwrap_or_else(|e| panic!("evaluating {js}: {e}"))
        .into_value()
        .unwrap_or_else(|e| panic!("the value of {js}: {e}"))
}

/// Waits until `js` (an expression) is true in the page; panics with `what` and the page's
/// text otherwise.
pub async fn wait_js(page: &Page, what: &str, js: &str, timeout: Duration) {
    let start = Instant::now();
    loop {
        let ok = match page.evaluate(format!("Boolean({js})")).await {
            Ok(v) => v.into_value::<bool>().unwrap_or(false),
            Err(_) => false,
        };
        if ok {
            return;
        }
        if start.elapsed() > timeout {
            let text: String = page
                .evaluate("document.body ? document.body.innerText : ''")
                .await
                .ok()
                .and_then(|v| v.into_value().ok())
                .unwrap_or_default();
            panic!("the page never showed {what} within {timeout:?} ({js}); it shows:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the element `selector` as a person would (mouse events at its centre).
pub async fn click(page: &Page, selector: &str) {
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("finding {selector}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {selector}: {e}"));
}

/// Saves a full-page screenshot as `name`.png; returns its path.
pub async fn screenshot(page: &Page, name: &str) -> PathBuf {
    save(page, name, true).await
}

/// Saves a screenshot of the window (not the whole page) as `name`.png.
pub async fn screenshot_window(page: &Page, name: &str) -> PathBuf {
    save(page, name, false).await
}

async fn save(page: &Page, name: &str, full_page: bool) -> PathBuf {
    let path = screenshot_dir().join(format!("{name}.png"));
    let png = page
        .screenshot(ScreenshotParams::builder().full_page(full_page).build())
        .await
        .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    eprintln!("screenshot: {}", path.display());
    path
}
