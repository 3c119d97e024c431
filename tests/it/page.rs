//! The status page in a real browser: headless Chromium (Debian's
//! `chromium`, installed by scripts/test.sh) loads the page from the running
//! server, runs its script, and the rendered DOM is checked.

use std::process::Command;
use std::time::Duration;

use crate::backend::*;
use crate::harness::*;

pub fn render(url: &str) -> String {
    let profile_dir = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=3000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile_dir.path().display()))
        .arg(url)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run chromium ({e}); run the tests with scripts/test.sh, which installs it"
            )
        });
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn status_page_renders_in_a_browser() {
    let primary = Backend::http(Mode::Unavailable);
    let secondary = Backend::http(Mode::Ok);
    let profile = format!(
        r#"
name = "todoapi.tm.example.test."
routing = "priority"
ttl = 30
[monitor]
protocol = "http"
path = "/Health/{{key}}"
key = "page-test-key"
interval = "200ms"
timeout = "100ms"
tolerated_failures = 0
[[endpoints]]
name = "primary"
target = "203.0.113.10"
probe = {{ address = "127.0.0.1", port = {} }}
[[endpoints]]
name = "secondary"
target = "198.51.100.20"
probe = {{ address = "127.0.0.1", port = {} }}
"#,
        primary.port(),
        secondary.port()
    );
    let s = Fixture::new("", &[("todoapi.toml", &profile)]).start_probing();
    wait_until(Duration::from_secs(3), || {
        let t = s.shared.serving.table.load();
        t.endpoints
            .iter()
            .all(|e| e.status() != switchyard::health::Status::CheckingEndpoint)
    })
    .expect("both decided");
    let dom = render(&format!("http://{}/", s.admin));
    assert!(
        dom.contains("data-profile=\"todoapi.tm.example.test.\""),
        "page not rendered:\n{dom}"
    );
    // The profile and each endpoint with its status badge, probe result and transition.
    assert!(
        dom.contains("<span class=\"badge Degraded\">Degraded</span>"),
        "{dom}"
    );
    assert!(
        dom.contains("<span class=\"badge Online\">Online</span>"),
        "{dom}"
    );
    assert!(dom.contains("data-endpoint=\"primary\""), "{dom}");
    assert!(dom.contains("status 503"), "last probe error shown: {dom}");
    assert!(dom.contains("HTTP 200"), "{dom}");
    assert!(
        dom.contains("CheckingEndpoint → Degraded"),
        "transition shown: {dom}"
    );
    assert!(dom.contains("priority · TTL 30"), "{dom}");
    // At a glance: the profile is Degraded, yet a healthy endpoint serves
    // it; and how long a failure can reach clients (0.2 s x 1 + 0.1 s + 30 s).
    assert!(dom.contains("serving: healthy"), "{dom}");
    assert!(dom.contains("worst-case failover 30.3 s"), "{dom}");
    assert!(
        !dom.contains("page-test-key"),
        "the key leaked into the page"
    );
    // The script reached the API: its error banner stayed hidden and empty.
    assert!(
        dom.contains("<div id=\"problem\" style=\"display: none;\"></div>"),
        "{dom}"
    );
    // Without the script (curl), the server's first view says the same.
    let (code, html) = http(s.admin, "GET", "/", None);
    assert_eq!(code, 200);
    for want in [
        "<span class=\"badge Degraded\">Degraded</span>",
        "<span class=\"badge Online\">Online</span>",
        "<span class=\"err\">status 503",
        "<span>HTTP 200</span><span class=\"muted\"> · ",
        " ms · ",
        "<details><summary>",
        "CheckingEndpoint → Degraded  (",
        "serving: healthy",
        "worst-case failover 30.3 s",
    ] {
        assert!(html.contains(want), "no `{want}` in:\n{html}");
    }
    assert!(
        !html.contains("page-test-key"),
        "the key leaked into the page"
    );
}

/// The page shows overrides with their expiry and reasons, held
/// endpoints, drains with their drained-at time, and the history; it
/// offers the actions that fit each endpoint.
#[test]
fn status_page_shows_overrides_holds_and_drains() {
    use switchyard::health::Status;
    const NAME: &str = "todoapi.tm.example.test.";
    let profile = ProfileToml::todoapi()
        .set("failback", "manual")
        .endpoint("tertiary", "192.0.2.30")
        .set_endpoint("tertiary", "priority", 3)
        .build();
    let extra =
        "[admin]\nlisten = \"127.0.0.1:0\"\n[admin.tokens]\nalice = \"alice-token-0123456789\"\n";
    let s = Fixture::new(extra, &[("todoapi.toml", &profile)]).start();
    for e in ["primary", "secondary", "tertiary"] {
        s.set_status(NAME, e, Status::Online);
    }
    let post = |path: String| {
        let (code, doc) = json(s.admin, "POST", &path, Some("alice-token-0123456789"));
        assert_eq!(code, 200, "{doc}");
    };
    let base = "/api/v1/profiles/todoapi.tm.example.test/endpoints";
    // secondary answered once, then drained.
    post(format!(
        "{base}/primary/disable?for=30m&reason=CHG-1234%20patching"
    ));
    udp(s.v4(), NAME, hickory_proto::rr::RecordType::A);
    post(format!("{base}/secondary/drain?reason=move%20to%20v2"));
    // tertiary went down and came back: held.
    s.set_status(NAME, "tertiary", Status::Degraded);
    s.set_status(NAME, "tertiary", Status::Online);
    let dom = render(&format!("http://{}/", s.admin));
    assert!(
        dom.contains("data-profile=\"todoapi.tm.example.test.\""),
        "{dom}"
    );
    assert!(
        dom.contains("disabled until ") && dom.contains(" left) by alice: CHG-1234 patching"),
        "override with expiry, who and why: {dom}"
    );
    assert!(
        dom.contains("data-drain=\"draining\"") && dom.contains("draining: drained at "),
        "drain with its drained-at time: {dom}"
    );
    assert!(dom.contains("last answered "), "{dom}");
    assert!(
        dom.contains("<span class=\"badge Onlineheld\">Online (held)</span>"),
        "{dom}"
    );
    assert!(
        dom.contains("held since ") && dom.contains("until resumed"),
        "{dom}"
    );
    // Actions that fit: enable for the overridden, resume for the held.
    assert!(dom.contains("data-action=\"resume\""), "{dom}");
    assert!(dom.contains("data-action=\"enable\""), "{dom}");
    // The history, newest first, with who and why.
    assert!(dom.contains("Runtime overrides · history"), "{dom}");
    assert!(dom.contains("<tr data-history=\"drain\">"), "{dom}");
    assert!(dom.contains("<td>move to v2</td>"), "{dom}");
    assert!(!dom.contains("alice-token"), "a token leaked into the page");
}

/// The page reads without JavaScript (issue 20, item 16): its first view
/// is rendered on the server from the status document, HTML-escaped, so
/// `curl`, a text browser or a screenshot taken at once shows the profiles,
/// statuses, overrides and history, not "loading...".
#[test]
fn status_page_reads_without_javascript() {
    use switchyard::health::Status;
    const NAME: &str = "todoapi.tm.example.test.";
    let profile = ProfileToml::todoapi()
        .set("failback", "manual")
        .endpoint("tertiary", "192.0.2.30")
        .set_endpoint("tertiary", "priority", 3)
        .build();
    let extra =
        "[admin]\nlisten = \"127.0.0.1:0\"\n[admin.tokens]\nalice = \"alice-token-0123456789\"\n";
    let s = Fixture::new(extra, &[("todoapi.toml", &profile)]).start();
    for e in ["primary", "secondary", "tertiary"] {
        s.set_status(NAME, e, Status::Online);
    }
    let base = "/api/v1/profiles/todoapi.tm.example.test/endpoints";
    let (code, doc) = json(
        s.admin,
        "POST",
        &format!("{base}/primary/disable?for=30m&reason=%3Cb%3Epatch%3C/b%3E%20%26%20reboot"),
        Some("alice-token-0123456789"),
    );
    assert_eq!(code, 200, "{doc}");
    s.set_status(NAME, "tertiary", Status::Degraded);

    let (code, html) = http(s.admin, "GET", "/", None);
    assert_eq!(code, 200);
    assert!(!html.contains("loading"), "{html}");
    for want in [
        "<span class=\"meta\" id=\"meta\">1 profiles · configuration loaded ",
        "<section data-profile=\"todoapi.tm.example.test.\"><h2>todoapi.tm.example.test.<span class=\"badge Degraded\">Degraded</span>",
        "serving: healthy",
        "priority · TTL 30 · worst-case failover 75 s",
        "<tr data-endpoint=\"primary\"><td><strong>primary</strong><div class=\"override disabled\">disabled until ",
        " left) by alice: &lt;b&gt;patch&lt;/b&gt; &amp; reboot</div>",
        "<td class=\"mono\">203.0.113.10</td><td><span class=\"badge Disabled\">Disabled</span>",
        "<tr data-endpoint=\"secondary\"><td><strong>secondary</strong></td><td class=\"mono\">198.51.100.20</td><td><span class=\"badge Online\">Online</span>",
        "<tr data-endpoint=\"tertiary\">",
        "<span class=\"badge Degraded\">Degraded</span>",
        "<span class=\"muted\">not probed</span>",
        "<h2>Runtime overrides · history</h2>",
        "<tr data-history=\"disable\">",
        "<td>&lt;b&gt;patch&lt;/b&gt; &amp; reboot</td>",
        "<noscript><div id=\"static\">This view was made by the server at ",
    ] {
        assert!(html.contains(want), "no `{want}` in:\n{html}");
    }
    assert!(!html.contains("<b>patch"), "not escaped:\n{html}");
    assert!(!html.contains("test-key") && !html.contains("alice-token"));
    // The script still takes over.
    assert!(html.contains("setInterval(refresh, 2000)"));
}
