//! What a webhook receives: the generic JSON document, or a Slack-compatible
//! `{"text": ...}` message (Slack, Mattermost, Rocket.Chat and others that
//! take Slack's incoming-webhook format).

use std::time::SystemTime;

use serde::Serialize;

use super::event::Kind;

/// The answer a profile's name gets now from this node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// The response code of the A query (`NOERROR`, `NXDOMAIN`, ...).
    pub rcode: String,
    /// The data of the answer records of the A and AAAA queries: addresses
    /// (or a CNAME's target). Empty: NODATA or an error code.
    pub records: Vec<String>,
}

/// One message to a target. Every field is present in the JSON document
/// (`null` when it does not apply), so receivers can rely on the schema.
#[derive(Clone, Debug, Serialize)]
pub struct Message {
    /// Unique per message and kept across retries: receivers de-duplicate
    /// on it (delivery is at least once).
    pub id: String,
    /// The event name (`endpoint.status`, ...).
    pub event: Kind,
    /// When it happened (RFC 3339, UTC).
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    /// The node that sends it (`cluster.node`, or `local`).
    pub node: String,
    /// The profile (its DNS name), for profile, endpoint and override events.
    pub profile: Option<String>,
    /// The endpoint, for endpoint and override events.
    pub endpoint: Option<String>,
    /// The other node, for cluster events.
    pub peer: Option<String>,
    /// The status before (an endpoint status, or what the profile served).
    pub old_status: Option<String>,
    /// The status now.
    pub new_status: Option<String>,
    /// Why, in words (a probe failure, a quorum verdict, an error).
    pub reason: String,
    /// How many changes this message stands for: more than 1 when flapping
    /// was coalesced (`old_status` is then the status before the first of
    /// them, `new_status` the latest).
    pub count: u32,
    /// What the profile serves now: `healthy`, `unmonitored`, `unverified`,
    /// `failing open` or `not answering`.
    pub serving: Option<&'static str>,
    /// The answer the profile's name gets now.
    pub answer: Option<Answer>,
    /// One line for people (the Slack text without its emoji).
    pub summary: String,
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::clock::rfc3339_millis(*t))
}

impl Message {
    /// Fills in [`Message::summary`] from the other fields.
    pub fn summarise(&mut self) {
        self.summary = summary(self);
    }
}

/// One line describing `m`.
fn summary(m: &Message) -> String {
    let profile = m.profile.as_deref().unwrap_or("?");
    let change = match (&m.old_status, &m.new_status) {
        (Some(o), Some(n)) => format!("{o} → {n}"),
        (None, Some(n)) => n.clone(),
        _ => String::new(),
    };
    let reason = if m.reason.is_empty() {
        String::new()
    } else {
        format!(" ({})", m.reason)
    };
    let mut line = match m.event {
        Kind::EndpointStatus => format!(
            "{profile}/{}: {change}{reason}",
            m.endpoint.as_deref().unwrap_or("?")
        ),
        Kind::ProfileStatus => format!("profile {profile}: {change}{reason}"),
        // The reason says it all: "certificate expires in 3 days (...),
        // within cert_warning (14d)".
        Kind::EndpointCertificate => format!(
            "{profile}/{}: {}{}",
            m.endpoint.as_deref().unwrap_or("?"),
            if m.new_status.as_deref() == Some("expiring") {
                ""
            } else {
                "renewed: "
            },
            m.reason
        ),
        Kind::ProfileFailingOpen => format!(
            "profile {profile} is failing open: no endpoint is answerable, on_all_down applies{reason}"
        ),
        Kind::OverrideApplied => format!(
            "{profile}/{}: {}{reason}",
            m.endpoint.as_deref().unwrap_or("?"),
            m.new_status.as_deref().unwrap_or("override applied")
        ),
        Kind::ReloadRejected => format!("configuration rejected{reason}"),
        Kind::StateFile => format!("state file problem{reason}"),
        Kind::NodeJoined => format!("node {} joined{reason}", m.peer.as_deref().unwrap_or("?")),
        Kind::NodeLeft => format!(
            "node {} is dead (no longer counted in quorums){reason}",
            m.peer.as_deref().unwrap_or("?")
        ),
        Kind::NodeDrift => format!(
            "node {}: {change}{reason}",
            m.peer.as_deref().unwrap_or("?")
        ),
        Kind::ProberImpaired => {
            format!("this node's prober is impaired: every status is frozen{reason}")
        }
        Kind::ProberRecovered => {
            format!("this node's prober recovered: statuses thaw{reason}")
        }
    };
    if m.count > 1 {
        line.push_str(&format!(" [{} changes coalesced]", m.count));
    }
    if let Some(a) = &m.answer {
        if a.records.is_empty() {
            line.push_str(&format!("; answering {}", a.rcode));
            if a.rcode == "NOERROR" {
                line.push_str(" (no records)");
            }
        } else {
            line.push_str(&format!("; answering {}", a.records.join(", ")));
        }
    }
    line.push_str(&format!(" [node {}]", m.node));
    line
}

/// The generic JSON body.
pub fn json(m: &Message) -> Vec<u8> {
    serde_json::to_vec(m).unwrap_or_default()
}

/// The Slack-compatible body: `{"text": ...}` with an emoji for the kind of
/// news, and the event id as a footnote (a context block) for looking it up.
pub fn slack(m: &Message) -> Vec<u8> {
    let emoji = match (m.event, m.new_status.as_deref()) {
        (Kind::ProfileFailingOpen, _) => ":rotating_light:",
        (Kind::EndpointStatus, Some("Online" | "Unmonitored")) => ":large_green_circle:",
        (Kind::EndpointStatus, Some("Degraded")) => ":red_circle:",
        (Kind::ProfileStatus, Some("healthy" | "unmonitored")) => ":large_green_circle:",
        (Kind::ProfileStatus, _) => ":large_orange_circle:",
        (Kind::EndpointCertificate, Some("expiring")) => ":hourglass_flowing_sand:",
        (Kind::EndpointCertificate, _) => ":large_green_circle:",
        (Kind::OverrideApplied, _) => ":wrench:",
        (Kind::ReloadRejected | Kind::StateFile, _) => ":warning:",
        (Kind::NodeJoined, _) => ":heavy_plus_sign:",
        (Kind::NodeLeft | Kind::NodeDrift, _) => ":warning:",
        (Kind::ProberImpaired, _) => ":rotating_light:",
        (Kind::ProberRecovered, _) => ":large_green_circle:",
        _ => ":information_source:",
    };
    let text = format!("{emoji} *switchyard* {}", escape(&m.summary));
    let doc = serde_json::json!({
        "text": text,
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": text } },
            { "type": "context", "elements": [
                { "type": "mrkdwn", "text": format!("{} · {} · id {}", m.event.as_str(), crate::clock::rfc3339_seconds(m.time), m.id) }
            ] }
        ]
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// Slack's three control characters in message text.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        let mut m = Message {
            id: "ns1-00000000000000ff-7".into(),
            event: Kind::EndpointStatus,
            time: std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
            node: "ns1".into(),
            profile: Some("todoapi.tm.example.test.".into()),
            endpoint: Some("primary".into()),
            peer: None,
            old_status: Some("Online".into()),
            new_status: Some("Degraded".into()),
            reason: "status 503".into(),
            count: 1,
            serving: Some("healthy"),
            answer: Some(Answer {
                rcode: "NOERROR".into(),
                records: vec!["198.51.100.20".into()],
            }),
            summary: String::new(),
        };
        m.summarise();
        m
    }

    #[test]
    fn json_has_every_field() {
        let v: serde_json::Value = serde_json::from_slice(&json(&message())).unwrap();
        assert_eq!(v["id"], "ns1-00000000000000ff-7");
        assert_eq!(v["event"], "endpoint.status");
        assert_eq!(v["time"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["node"], "ns1");
        assert_eq!(v["profile"], "todoapi.tm.example.test.");
        assert_eq!(v["endpoint"], "primary");
        assert_eq!(v["peer"], serde_json::Value::Null);
        assert_eq!(v["old_status"], "Online");
        assert_eq!(v["new_status"], "Degraded");
        assert_eq!(v["reason"], "status 503");
        assert_eq!(v["count"], 1);
        assert_eq!(v["serving"], "healthy");
        assert_eq!(v["answer"]["rcode"], "NOERROR");
        assert_eq!(v["answer"]["records"][0], "198.51.100.20");
        assert_eq!(
            v["summary"],
            "todoapi.tm.example.test./primary: Online → Degraded (status 503); answering 198.51.100.20 [node ns1]"
        );
    }

    #[test]
    fn certificate_news_reads_as_one_line() {
        let mut m = message();
        m.event = Kind::EndpointCertificate;
        m.old_status = Some("valid".into());
        m.new_status = Some("expiring".into());
        m.reason =
            "certificate expires in 2 days (2026-12-09 03:00:00 UTC), within cert_warning (14d)"
                .into();
        m.summarise();
        assert_eq!(
            m.summary,
            "todoapi.tm.example.test./primary: certificate expires in 2 days (2026-12-09 03:00:00 UTC), within cert_warning (14d); answering 198.51.100.20 [node ns1]"
        );
        let v: serde_json::Value = serde_json::from_slice(&slack(&m)).unwrap();
        assert!(
            v["text"]
                .as_str()
                .unwrap()
                .starts_with(":hourglass_flowing_sand: "),
            "{v}"
        );
        m.new_status = Some("valid".into());
        m.summarise();
        assert!(
            m.summary.contains("/primary: renewed: certificate"),
            "{}",
            m.summary
        );
    }

    #[test]
    fn slack_is_text_with_blocks() {
        let mut m = message();
        m.count = 3;
        m.reason = "a <b> & c".into();
        m.summarise();
        let v: serde_json::Value = serde_json::from_slice(&slack(&m)).unwrap();
        let text = v["text"].as_str().unwrap();
        assert!(
            text.starts_with(":red_circle: *switchyard* todoapi"),
            "{text}"
        );
        assert!(text.contains("[3 changes coalesced]"), "{text}");
        assert!(text.contains("a &lt;b&gt; &amp; c"), "{text}");
        assert_eq!(v["blocks"][0]["text"]["text"], text);
        assert!(
            v["blocks"][1]["elements"][0]["text"]
                .as_str()
                .unwrap()
                .contains("ns1-00000000000000ff-7")
        );
    }
}
