//! The events the server reports: what happened ([`Kind`]) and the event
//! as the code that saw it builds it ([`Event`]).

use std::time::SystemTime;

use serde::Serialize;

use crate::health::Status;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Kind {
    /// An endpoint's status changed.
    #[serde(rename = "endpoint.status")]
    EndpointStatus,
    /// What a profile serves changed (other than to failing open).
    #[serde(rename = "profile.status")]
    ProfileStatus,
    /// A profile fails open: no endpoint is answerable, `on_all_down`
    /// applies.
    #[serde(rename = "profile.failing_open")]
    ProfileFailingOpen,
    /// An HTTPS endpoint's certificate came within its `cert_warning` of
    /// expiring, or was renewed beyond it.
    #[serde(rename = "endpoint.certificate")]
    EndpointCertificate,
    /// A runtime override (disable, enable) was applied.
    #[serde(rename = "override.applied")]
    OverrideApplied,
    /// A configuration reload was rejected.
    #[serde(rename = "reload.rejected")]
    ReloadRejected,
    /// The state file could not be used or written.
    #[serde(rename = "state_file.problem")]
    StateFile,
    /// A cluster node joined (or is alive again).
    #[serde(rename = "cluster.node_joined")]
    NodeJoined,
    /// A cluster node is dead (left).
    #[serde(rename = "cluster.node_left")]
    NodeLeft,
    /// A cluster node's configuration differs from this one's (or no
    /// longer does).
    #[serde(rename = "cluster.drift")]
    NodeDrift,
    /// This node's prober is impaired (it is the one failing): every
    /// status is frozen.
    #[serde(rename = "prober.impaired")]
    ProberImpaired,
    /// The prober recovered: statuses thaw.
    #[serde(rename = "prober.recovered")]
    ProberRecovered,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 12] = [
        Kind::EndpointStatus,
        Kind::ProfileStatus,
        Kind::ProfileFailingOpen,
        Kind::EndpointCertificate,
        Kind::OverrideApplied,
        Kind::ReloadRejected,
        Kind::StateFile,
        Kind::NodeJoined,
        Kind::NodeLeft,
        Kind::NodeDrift,
        Kind::ProberImpaired,
        Kind::ProberRecovered,
    ];

    /// Its name in payloads, headers and `events = [...]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::EndpointStatus => "endpoint.status",
            Kind::ProfileStatus => "profile.status",
            Kind::ProfileFailingOpen => "profile.failing_open",
            Kind::EndpointCertificate => "endpoint.certificate",
            Kind::OverrideApplied => "override.applied",
            Kind::ReloadRejected => "reload.rejected",
            Kind::StateFile => "state_file.problem",
            Kind::NodeJoined => "cluster.node_joined",
            Kind::NodeLeft => "cluster.node_left",
            Kind::NodeDrift => "cluster.drift",
            Kind::ProberImpaired => "prober.impaired",
            Kind::ProberRecovered => "prober.recovered",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Flapping of these is coalesced.
    pub(super) fn coalesced(self) -> bool {
        matches!(
            self,
            Kind::EndpointStatus | Kind::ProfileStatus | Kind::ProfileFailingOpen
        )
    }
}

/// An event, as the code that saw it reports it.
#[derive(Clone, Debug)]
pub struct Event {
    pub(super) kind: Kind,
    pub(super) profile: Option<String>,
    pub(super) endpoint: Option<String>,
    pub(super) peer: Option<String>,
    pub(super) old: Option<String>,
    pub(super) new: Option<String>,
    pub(super) reason: String,
    pub(super) at: SystemTime,
}

impl Event {
    pub(super) fn new(kind: Kind, reason: impl Into<String>) -> Event {
        Event {
            kind,
            profile: None,
            endpoint: None,
            peer: None,
            old: None,
            new: None,
            reason: reason.into(),
            at: SystemTime::now(),
        }
    }

    /// An endpoint's status changed from `old` to `new`.
    pub fn endpoint(
        profile: &str,
        endpoint: &str,
        old: Status,
        new: Status,
        reason: impl Into<String>,
    ) -> Event {
        Event {
            profile: Some(profile.to_string()),
            endpoint: Some(endpoint.to_string()),
            old: Some(old.as_str().to_string()),
            new: Some(new.as_str().to_string()),
            ..Event::new(Kind::EndpointStatus, reason)
        }
    }

    /// An HTTPS endpoint's certificate crossed its `cert_warning`
    /// threshold: `new` is `expiring` or (renewed) `valid`.
    pub fn certificate(
        profile: &str,
        endpoint: &str,
        crossing: crate::health::cert::Crossing,
        reason: impl Into<String>,
    ) -> Event {
        use crate::health::cert::Crossing;
        let old = match crossing {
            Crossing::Expiring => Crossing::Renewed,
            Crossing::Renewed => Crossing::Expiring,
        };
        Event {
            profile: Some(profile.to_string()),
            endpoint: Some(endpoint.to_string()),
            old: Some(old.as_str().to_string()),
            new: Some(crossing.as_str().to_string()),
            ..Event::new(Kind::EndpointCertificate, reason)
        }
    }

    /// The status before, for events that know it.
    pub fn with_old(mut self, old: &str) -> Event {
        self.old = Some(old.to_string());
        self
    }

    /// A runtime override `record` (disable, drain, shed or enable): who
    /// made it, where, until when and why.
    pub fn override_applied(
        profile: &str,
        endpoint: &str,
        record: &crate::overrides::Override,
    ) -> Event {
        use crate::overrides::Kind as K;
        let new = match record.kind() {
            K::Disable => "disabled",
            K::Drain => "draining",
            K::Shed => "shedding",
            K::Enable => "enabled",
            K::Resume => "resumed",
        };
        let mut reason = format!(
            "by {} on node {}",
            record.by.as_deref().unwrap_or("?"),
            record.node
        );
        if let Some(p) = record.shed {
            reason.push_str(&format!(", {p} % of client networks moved away"));
        }
        if let Some(o) = record.over_ms {
            reason.push_str(&format!(
                ", ramping over {}",
                humantime::format_duration(std::time::Duration::from_millis(o))
            ));
        }
        if let Some(u) = record.until {
            reason.push_str(&format!(
                ", until {}",
                crate::clock::rfc3339_millis(crate::clock::from_unix_millis(u))
            ));
        }
        if let Some(r) = &record.reason {
            reason.push_str(&format!(": {r}"));
        }
        Event {
            profile: Some(profile.to_string()),
            endpoint: Some(endpoint.to_string()),
            new: Some(new.to_string()),
            ..Event::new(Kind::OverrideApplied, reason)
        }
    }

    /// A reload was rejected, for `reason`.
    pub fn reload_rejected(reason: impl Into<String>) -> Event {
        Event::new(Kind::ReloadRejected, reason)
    }

    /// A state file problem.
    pub fn state_file(problem: impl Into<String>) -> Event {
        Event::new(Kind::StateFile, problem)
    }

    /// A cluster node `peer` joined.
    pub fn node_joined(peer: &str, reason: impl Into<String>) -> Event {
        Event {
            peer: Some(peer.to_string()),
            ..Event::new(Kind::NodeJoined, reason)
        }
    }

    /// A cluster node `peer` is dead.
    pub fn node_left(peer: &str, reason: impl Into<String>) -> Event {
        Event {
            peer: Some(peer.to_string()),
            ..Event::new(Kind::NodeLeft, reason)
        }
    }

    /// A cluster node's configuration drifted (`drifted`) or is the same
    /// again.
    pub fn node_drift(peer: &str, drifted: bool, reason: impl Into<String>) -> Event {
        let (old, new) = if drifted {
            ("same configuration", "different configuration")
        } else {
            ("different configuration", "same configuration")
        };
        Event {
            peer: Some(peer.to_string()),
            old: Some(old.to_string()),
            new: Some(new.to_string()),
            ..Event::new(Kind::NodeDrift, reason)
        }
    }

    /// This node's prober is impaired: `reason` says why (the notice the
    /// status page shows).
    pub fn prober_impaired(reason: impl Into<String>) -> Event {
        Event {
            old: Some("probing".to_string()),
            new: Some("frozen".to_string()),
            ..Event::new(Kind::ProberImpaired, reason)
        }
    }

    /// This node's prober recovered.
    pub fn prober_recovered(reason: impl Into<String>) -> Event {
        Event {
            old: Some("frozen".to_string()),
            new: Some("probing".to_string()),
            ..Event::new(Kind::ProberRecovered, reason)
        }
    }

    /// What happened.
    pub fn kind(&self) -> Kind {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_serialise_by_name() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::String(k.as_str().into())
            );
        }
        assert_eq!(Kind::parse("endpoint"), None);
    }
}
