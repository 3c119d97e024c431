//! `/rum.js`, the script pages embed (`rum.js` beside this file): about
//! 4 KiB, served with a one-hour cache. What it does, in order, once the
//! page has loaded and the browser is idle: asks `/rum/config` for a token
//! and the endpoints of its key, fetches each endpoint's `rum_url` once
//! (timed), loads one URL under `<token>.<rum.zone>` (so the visitor's
//! resolver asks Switchyard for that name), then posts the results to
//! `/rum/beacon` (`sendBeacon`). Every step is bounded (5 s) and every
//! error swallowed.

/// The script.
pub const SCRIPT: &str = include_str!("rum.js");

#[cfg(test)]
mod tests {
    #[test]
    fn the_script_is_small_and_waits_for_the_page() {
        let s = super::SCRIPT;
        assert!(s.len() < 6 * 1024, "{} bytes", s.len());
        assert!(s.contains("\"load\"") && s.contains("requestIdleCallback"));
        assert!(s.contains("sendBeacon"));
    }
}
