//! The tasks that run beside the listeners: reloads on SIGHUP, the notes
//! of overrides and holds running out, and the saving of the decided
//! statuses, and the combining of named monitors into endpoint statuses.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::reload::Reloader;
use crate::state::Shared;

/// Reloads on SIGHUP until `shutdown`.
pub(super) async fn sighup(
    reloader: Arc<Reloader>,
    early: Option<tokio::signal::unix::Signal>,
    shutdown: CancellationToken,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Some(mut hup) = early.or_else(|| signal(SignalKind::hangup()).ok()) else {
        warn!("cannot listen for SIGHUP; reload with POST /api/v1/reload");
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            s = hup.recv() => if s.is_none() { return },
        }
        let _ = reloader.reload("SIGHUP").await;
    }
}

/// Logs timed overrides (`--for`) as they run out, adding each to the
/// history, drain ramps (`--over`) as they end, and holds as
/// `failback_after` ends them, and notifies overrides and holds.
/// They end by themselves on every node; this only says so. It sleeps
/// until the next such deadline, woken early by any event (a new override,
/// a status change that starts a hold, a reload), never polling.
pub(super) async fn note_expiries(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut since = crate::clock::now_millis();
    let mut held: std::collections::HashMap<crate::snapshot::EndpointKey, (u64, u64)> =
        Default::default();
    loop {
        let now = crate::clock::now_millis();
        let (ended, ramped) = {
            let all = shared.overrides.lock().unwrap_or_else(|p| p.into_inner());
            let within = |t: u64| since <= t && t < now;
            let ended: Vec<_> = all
                .iter()
                .filter(|(_, o)| (o.disabled || o.shed.is_some()) && o.until.is_some_and(within))
                .map(|(k, o)| (k.clone(), o.clone()))
                .collect();
            let ramped: Vec<_> = all
                .iter()
                .filter(|(_, o)| o.ramp_end().is_some_and(|e| within(e) && o.in_force(e)))
                .map(|(k, _)| k.clone())
                .collect();
            (ended, ramped)
        };
        since = now;
        for key in ramped {
            info!(
                profile = key.profile(),
                endpoint = key.endpoint(),
                "drain ramp (--over) over: the endpoint is out of answers"
            );
        }
        for (key, o) in ended {
            info!(
                profile = key.profile(),
                endpoint = key.endpoint(),
                action = o.kind().as_str(),
                "runtime override ran out (--for): {}",
                if o.disabled {
                    "the endpoint is back"
                } else {
                    "the endpoint no longer sheds"
                }
            );
            let mut end =
                crate::overrides::Override::new(false, o.until.unwrap_or(now), &o.node, Some(&o));
            end.at = o.until.unwrap_or(now);
            end.by = Some(format!(
                "expiry of the {} by {}",
                o.kind().as_str(),
                o.by.as_deref().unwrap_or("?")
            ));
            shared.record_history(&key, &end);
            shared.notify.emit(
                crate::notify::Event::override_applied(key.profile(), key.endpoint(), &end)
                    .with_old(if o.disabled { "Disabled" } else { "shedding" }),
            );
        }
        // Holds that `failback_after` ended: the endpoint is answered again.
        let table = shared.serving.table.load();
        let mut still = std::collections::HashMap::new();
        for p in &table.profiles {
            for e in table.endpoints_of(p).iter().filter(|e| e.hold.is_some()) {
                let key = crate::snapshot::EndpointKey::new(p.name.as_str(), &e.name);
                match e.hold_now() {
                    Some(h) => {
                        still.insert(key, h);
                    }
                    None => {
                        if let Some((_, until)) = held.get(&key)
                            && *until != 0
                            && now >= *until
                            && table.status(e) == crate::health::Status::Online
                        {
                            shared.notify.status_changed(
                                crate::notify::ChangeSource::HoldEnded,
                                key.profile(),
                                key.endpoint(),
                                crate::health::Status::Held,
                                crate::health::Status::Online,
                                "failback_after passed: answered again",
                            );
                        }
                    }
                }
            }
        }
        held = still;
        let now = crate::clock::now_millis();
        let next = shared
            .overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, o)| o.disabled || o.shed.is_some())
            .flat_map(|(_, o)| o.until.into_iter().chain(o.ramp_end()))
            .chain(held.values().map(|&(_, until)| until))
            .filter(|&u| u >= now)
            .min();
        // Just past the deadline (holds end on whole seconds); a minute at
        // most, as a safety net against a missed event or a step of the wall clock.
        let wait = next.map_or(60_000, |u| u - now + 20).min(60_000);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
            _ = shared.notify.event() => {}
        }
    }
}

/// Keeps the decided statuses in the state file (checked every second,
/// written when they changed, and once more at shutdown), so a restart
/// can start from them.
pub(super) async fn save_statuses(path: PathBuf, shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut last: Vec<(String, String, u64)> = Vec::new();
    let mut calls = 0u64;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        let stopping = tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = tick.tick() => false,
        };
        let statuses =
            crate::state_file::statuses_of(&shared.probes.load(), &shared.serving.table.load());
        let now: Vec<(String, String, u64)> = statuses
            .iter()
            .map(|s| (s.probe.clone(), s.status.clone(), s.since))
            .collect();
        // Saved statuses are trusted for a while only: refresh them well
        // within that (every minute) even when nothing changed.
        calls += 1;
        let refresh = last != now || calls.is_multiple_of(60);
        last = now;
        if refresh || stopping {
            let (p, s) = (path.clone(), shared.clone());
            let result = tokio::task::spawn_blocking(move || crate::state_file::save(&p, &s))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            if let Err(e) = result {
                warn!(path = %path.display(), error = %e, "cannot save the decided statuses to the state file");
            }
        }
        if stopping {
            return;
        }
    }
}

/// Keeps the latency table: every minute drops the rows decayed below use
/// and saves it (when it changed, and once more at shutdown) to `path`,
/// beside the state file.
pub(super) async fn keep_latency(
    path: Option<PathBuf>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.tick().await;
    loop {
        let stopping = tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = tick.tick() => false,
        };
        let latency = shared.serving.latency.clone();
        let forget = latency.clone();
        let _ =
            tokio::task::spawn_blocking(move || forget.forget_old(std::time::SystemTime::now()))
                .await;
        if let Some(path) = path.clone()
            && latency.take_dirty()
        {
            let shown = path.display().to_string();
            let table = latency.clone();
            let result = tokio::task::spawn_blocking(move || crate::latency::save(&table, &path))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            if let Err(e) = result {
                // Tried again at the next minute (and at shutdown).
                latency.mark_dirty();
                warn!(path = %shown, error = %e, "cannot save the latency table");
            }
        }
        if stopping {
            return;
        }
    }
}

/// `shed_above`: sheds `shed_percent` of new traffic from an endpoint
/// whose probes report a load above it (with named monitors, the highest
/// load any reports), and stops when it is back below.
fn shed_by_load(p: &crate::snapshot::Profile, e: &crate::snapshot::Endpoint) {
    let load = e.load();
    let (permille, load, above) = match (p.shed, load) {
        (Some((above, permille)), Some(load)) if load > above => (permille, load, above),
        (Some((above, _)), load) => (0, load.unwrap_or(0), above),
        (None, _) if e.runtime.shed_permille() == 0 => return,
        (None, _) => (0, 0, 0),
    };
    if e.runtime.set_shed(permille, load, above) {
        match e.runtime.shed_text() {
            Some(text) => {
                info!(profile = %p.name, endpoint = %e.name, "endpoint sheds new traffic: {text}")
            }
            None => {
                info!(profile = %p.name, endpoint = %e.name, load = f64::from(load) / 1000.0, "endpoint stops shedding")
            }
        }
    }
}

/// Writes the combined status of each endpoint with named monitors into
/// its health cell (what the answer path reads), when a monitor's served
/// status, a push or the configuration changed, or a push expires, and
/// announces each change through the one sink, naming the failing
/// monitors. The only writer of those cells and of push monitors' cells.
pub(super) async fn combine_monitors(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let now = crate::clock::now_millis();
        let mut next: Option<u64> = None;
        let table = shared.serving.table.load();
        for p in &table.profiles {
            for e in table.endpoints_of(p) {
                shed_by_load(p, e);
                let (Some(m), crate::snapshot::Health::Monitored(cell)) = (&e.monitors, &e.health)
                else {
                    continue;
                };
                let key = crate::snapshot::EndpointKey::new(p.name.as_str(), &e.name);
                for input in m.inputs.iter() {
                    let Some(push) = input.push else {
                        continue;
                    };
                    let id = (
                        key.profile().to_string(),
                        key.endpoint().to_string(),
                        input.name.to_string(),
                    );
                    let (status, why, expires) = {
                        let store = shared.pushes.lock().unwrap_or_else(|p| p.into_inner());
                        crate::health::push::decide(&store.get(&id), now, push.on_stale)
                    };
                    next = match (next, expires) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    input.cell.publish(status, &why);
                }
                let status = m.status();
                if cell.get() == status {
                    continue;
                }
                let why = m.describe();
                let before = cell.publish(status, &format!("monitors: {why}"));
                if before != status {
                    shared.notify.status_changed(
                        crate::notify::ChangeSource::Monitors,
                        p.name.as_str(),
                        &e.name,
                        before,
                        status,
                        &why,
                    );
                }
            }
        }
        drop(table);
        // Just past the next push's expiry; an hour at most, as a safety
        // net against a step of the wall clock.
        let wait = next
            .map_or(3_600_000, |n| n.saturating_sub(now) + 20)
            .min(3_600_000);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = shared.combine_wake.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
        }
    }
}

/// Moves the Traffic View's queued records into its views every second,
/// until `shutdown`. While records come in numbers (a drain found more
/// than a sixteenth of the queue), it looks every 100 ms and drains as soon
/// as a quarter of the queue is taken, so a burst is drained before the
/// queue fills; otherwise it wakes once a second (what an idle server
/// pays).
pub(super) async fn drain_traffic(shared: Arc<Shared>, shutdown: CancellationToken) {
    use std::time::Duration;
    let mut last = tokio::time::Instant::now();
    let mut busy = false;
    loop {
        let nap = if busy {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(nap) => {}
        }
        let queue = &shared.serving.traffic;
        if last.elapsed() < Duration::from_millis(990) && !queue.quarter_full() {
            continue;
        }
        // Even with nothing queued: panes roll over and expire.
        last = tokio::time::Instant::now();
        let table = shared.serving.table.load_full();
        let geo = shared.serving.geo.load_full();
        let mut views = shared.traffic.lock().unwrap_or_else(|p| p.into_inner());
        let n = views.drain(queue, &table, geo.as_ref(), crate::clock::unix_secs_now());
        busy = n >= queue.capacity() / 16;
    }
}
