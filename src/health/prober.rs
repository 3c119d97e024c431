//! The prober: one task per distinct probe target, each probing on its own
//! interval, publishing every decision straight into the endpoint's
//! [`HealthCell`] (so the DNS path sees it on the next query).
//!
//! Targets are independent: a slow or hanging backend only ever occupies its
//! own task for at most `timeout`, which is shorter than its interval, so it
//! never delays another target's probe or any DNS answer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::HealthCell;
use super::probe::Target;
use super::state::{Machine, Thresholds};
use super::tls::ConfigCache;
use crate::config::ProbeSpec;
use crate::routing::RoutingTable;

/// Most probes in flight at once, whatever the configuration.
pub const MAX_IN_FLIGHT: usize = 4096;

/// Who a target's status belongs to, for log lines.
#[derive(Clone, Debug)]
struct User {
    profile: Arc<str>,
    endpoint: Arc<str>,
}

/// Starts probing every target in `specs` until `shutdown`. The first probes
/// go out at once, spread evenly over one interval.
pub fn spawn(
    specs: &[ProbeSpec],
    table: &RoutingTable,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let mut tls = ConfigCache::default();
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let n = specs.len().max(1) as u32;
    for (i, spec) in specs.iter().enumerate() {
        let tls_config = match &spec.tls {
            Some(key) => Some(tls.get(key)?),
            None => None,
        };
        let target = Target::new(spec, tls_config)?;
        let users: Vec<User> = spec
            .endpoints
            .iter()
            .filter_map(|&id| {
                let ep = table.endpoints.get(id as usize)?;
                let profile = table.profiles.get(ep.profile as usize)?;
                Some(User {
                    profile: profile.name.as_str().into(),
                    endpoint: (*ep.name).into(),
                })
            })
            .collect();
        let offset = quantize(spec.monitor.interval * i as u32 / n);
        tasks.spawn(run_target(
            target,
            spec.cell.clone(),
            users,
            Thresholds {
                tolerated_failures: spec.monitor.tolerated_failures,
                required_successes: spec.monitor.required_successes,
            },
            spec.monitor.interval,
            offset,
            permits.clone(),
            shutdown.clone(),
        ));
    }
    info!(targets = specs.len(), "prober started");
    Ok(tokio::spawn(async move {
        while tasks.join_next().await.is_some() {}
    }))
}

/// Start offsets are multiples of this, so probes due at nearly the same
/// moment wake the runtime once together instead of one by one; that
/// amortises the event-loop work over the batch (measured with
/// `benches/prober.sh`).
const START_QUANTUM: Duration = Duration::from_millis(25);

fn quantize(offset: Duration) -> Duration {
    let q = START_QUANTUM.as_nanos();
    Duration::from_nanos((offset.as_nanos() / q * q) as u64)
}

#[allow(clippy::too_many_arguments)]
async fn run_target(
    target: Target,
    cell: Arc<HealthCell>,
    users: Vec<User>,
    thresholds: Thresholds,
    interval: Duration,
    offset: Duration,
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    let mut machine = Machine::resume(cell.get());
    let mut ticker = tokio::time::interval_at(Instant::now() + offset, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let outcome = {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                o = target.run() => o,
            }
        };
        let transition = machine.record(outcome.is_success(), thresholds);
        if let Some(t) = transition {
            // Publish first: the DNS path reads this atomic on its next query.
            cell.set(t.to);
        }
        cell.note_probe(&outcome, machine.consecutive_failures(), transition);
        match (&transition, &outcome.failure) {
            (Some(t), failure) => {
                let reason = failure
                    .as_ref()
                    .map_or("probe succeeded", |f| f.reason.as_str());
                for u in &users {
                    if t.to == super::Status::Degraded {
                        warn!(
                            profile = %u.profile,
                            endpoint = %u.endpoint,
                            old = %t.from,
                            new = %t.to,
                            reason,
                            "endpoint status changed"
                        );
                    } else {
                        info!(
                            profile = %u.profile,
                            endpoint = %u.endpoint,
                            old = %t.from,
                            new = %t.to,
                            reason,
                            "endpoint status changed"
                        );
                    }
                }
            }
            (None, Some(f)) => {
                if let Some(u) = users.first() {
                    debug!(profile = %u.profile, endpoint = %u.endpoint, reason = %f, failures = machine.consecutive_failures(), "probe failed");
                }
            }
            (None, None) => {}
        }
    }
}
