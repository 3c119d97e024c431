//! DNS cookie secrets (RFC 7873, RFC 9018): the data the routing table
//! carries for the answer path, and how a reload rotates them. Making and
//! checking cookies is `dns::cookie`.

/// Seconds a server cookie stays valid (RFC 9018 §4.3: one hour).
pub const LIFETIME: u32 = 3600;

/// A server secret: 128 bits.
pub type Secret = [u8; 16];

/// The secrets in use: server cookies are made with `current` and accepted
/// from either (the previous one until `previous_until`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secrets {
    /// Makes and checks cookies.
    pub current: Secret,
    /// Still accepted after a rotation.
    pub previous: Option<Secret>,
    /// Until when (seconds since the epoch) `previous` is accepted:
    /// [`FOREVER`] when it is configured, an hour after a rotation when it
    /// was the current one (no cookie made with it lives longer).
    pub previous_until: u32,
    /// `current` came from the configuration (not generated).
    pub configured: bool,
}

/// `previous_until` of a configured previous secret.
pub const FOREVER: u32 = u32::MAX;

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

impl Secrets {
    /// A random secret (for servers without a configured one), 128 bits
    /// from the operating system's generator.
    pub fn random() -> Secrets {
        let mut current = [0u8; 16];
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut current).is_err() {
            // No system randomness at all (never seen on Linux): a secret
            // no one can predict better than the start time and address.
            let mut rng = fastrand::Rng::new();
            for b in current.iter_mut() {
                *b = rng.u8(..);
            }
        }
        Secrets {
            current,
            previous: None,
            previous_until: 0,
            configured: false,
        }
    }

    /// The secrets after a (re)load: `configured` and `configured_previous`
    /// from the configuration, `running` what served until now. A
    /// configured previous secret is accepted as long as it is configured;
    /// a current secret that a reload replaces is accepted for the hour its
    /// cookies live, and never inherited further; removing a configured
    /// secret starts a random one.
    pub fn next(
        configured: Option<Secret>,
        configured_previous: Option<Secret>,
        running: Option<&Secrets>,
        now: u32,
    ) -> Secrets {
        let rotated_from = |current: &Secret| {
            running.and_then(|r| {
                if r.current != *current {
                    Some((r.current, now.saturating_add(LIFETIME)))
                } else if r.previous_until != FOREVER && r.previous_until > now {
                    // Still within the hour of an earlier rotation.
                    r.previous.map(|p| (p, r.previous_until))
                } else {
                    None
                }
            })
        };
        match configured {
            Some(current) => {
                let (previous, previous_until) = match configured_previous {
                    Some(p) => (Some(p), FOREVER),
                    None => rotated_from(&current).map_or((None, 0), |(p, u)| (Some(p), u)),
                };
                Secrets {
                    current,
                    previous,
                    previous_until,
                    configured: true,
                }
            }
            None => match running {
                // A generated secret lives as long as the process.
                Some(r) if !r.configured => r.clone(),
                _ => {
                    let mut s = Secrets::random();
                    if let Some((p, u)) = rotated_from(&s.current) {
                        s.previous = Some(p);
                        s.previous_until = u;
                    }
                    s
                }
            },
        }
    }
}
