//! Reloads the GeoIP database when its file changes on disk. A replacement
//! that does not open and verify is rejected and the old database kept.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::GeoDb;
use crate::state::Shared;

/// How often the file's modification time and size are checked.
pub const POLL: Duration = Duration::from_secs(1);

fn stamp(path: &PathBuf) -> Option<(SystemTime, u64)> {
    super::file_stamp(path)
}

/// Watches `path` until `shutdown`, swapping in each valid new version.
pub async fn watch(path: PathBuf, shared: Arc<Shared>, shutdown: CancellationToken) {
    // Compare with the file as it was when the serving database was read,
    // so a replacement made before this task started is not missed.
    let mut seen = shared.geo.load().as_ref().and_then(|db| db.stamp);
    let mut ticker = tokio::time::interval(POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = stamp(&path);
        if now == seen || now.is_none() {
            continue;
        }
        // Let a writer finish: reload only once the file has been quiet for
        // one poll (a copy in progress changes size between polls).
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stamp(&path) != now {
            continue;
        }
        seen = now;
        let p = path.clone();
        match tokio::task::spawn_blocking(move || GeoDb::open(&p)).await {
            Ok(Ok(db)) => {
                info!(path = %path.display(), kind = db.kind(), "geoip database reloaded");
                shared.geo.store(Some(Arc::new(db)));
            }
            Ok(Err(e)) => error!("geoip database not reloaded, keeping the previous one: {e}"),
            Err(e) => error!("geoip reload failed: {e}"),
        }
    }
}
