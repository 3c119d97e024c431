//! What an Azure profile is mapped to before it is written: a profile
//! with its monitor and endpoints, in Switchyard's terms.

/// A profile being mapped.
#[derive(Debug)]
pub(super) struct Draft {
    pub(super) file: String,
    pub(super) at_relative: String,
    pub(super) at_endpoints: String,
    /// Azure resource name (what nested endpoints' resource ids end with).
    pub(super) resource_name: Option<String>,
    pub(super) relative: String,
    pub(super) fqdn: String,
    pub(super) name: String,
    pub(super) routing: &'static str,
    pub(super) ttl: Option<i64>,
    pub(super) enabled: bool,
    pub(super) max_answers: Option<i64>,
    pub(super) monitor: Monitor,
    pub(super) endpoints: Vec<Ep>,
}

/// The profile's `[monitor]`.
#[derive(Debug, Default)]
pub(super) struct Monitor {
    pub(super) protocol: &'static str,
    pub(super) port: Option<i64>,
    pub(super) path: Option<String>,
    pub(super) interval: i64,
    pub(super) timeout_ms: i64,
    pub(super) tolerated: i64,
    pub(super) expected: Vec<String>,
    pub(super) headers: Vec<(String, String)>,
}

/// An endpoint being mapped.
#[derive(Debug, Default)]
pub(super) struct Ep {
    pub(super) at: String,
    pub(super) name: String,
    pub(super) target: Option<String>,
    pub(super) nested: Option<NestedRef>,
    pub(super) child: Option<String>,
    pub(super) priority: Option<i64>,
    pub(super) weight: Option<i64>,
    /// TOML text of the value, and a comment.
    pub(super) location: Option<(String, String)>,
    pub(super) regions: Vec<String>,
    pub(super) subnets: Vec<String>,
    pub(super) enabled: bool,
    pub(super) always_serve: bool,
    pub(super) headers: Vec<(String, String)>,
    pub(super) min_child: Option<i64>,
    /// Why it is written commented out.
    pub(super) skip: Option<String>,
}

/// What a nested endpoint says of its child profile, to find it among
/// the imported ones.
#[derive(Debug)]
pub(super) struct NestedRef {
    pub(super) resource: Option<String>,
    pub(super) fqdn: Option<String>,
}
