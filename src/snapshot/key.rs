//! The name of an endpoint across configurations: what runtime overrides,
//! the state file and runtime state carried over a reload are keyed by.

use std::fmt;

/// A profile's endpoint by name: the profile in lowercase with the trailing
/// dot (profile names are DNS names), the endpoint as written.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointKey {
    profile: String,
    endpoint: String,
}

impl EndpointKey {
    /// The key of `endpoint` in `profile` (any case, with or without the
    /// trailing dot).
    pub fn new(profile: &str, endpoint: &str) -> EndpointKey {
        EndpointKey {
            profile: normalise_profile(profile),
            endpoint: endpoint.to_string(),
        }
    }

    /// The profile name, normalised.
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// The endpoint name.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl fmt::Display for EndpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.profile, self.endpoint)
    }
}

/// Profile names are DNS names: compared in lowercase, with the trailing dot.
pub fn normalise_profile(name: &str) -> String {
    let mut n = name.trim().to_ascii_lowercase();
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_compare_as_dns_names_endpoints_as_written() {
        assert_eq!(
            EndpointKey::new("A.Test", "x"),
            EndpointKey::new("a.test.", "x")
        );
        assert_ne!(
            EndpointKey::new("a.test", "x"),
            EndpointKey::new("a.test", "X")
        );
        assert_eq!(EndpointKey::new(" A.test ", "x").to_string(), "a.test./x");
    }
}
