//! File descriptors: raise the soft limit to the hard one at start, and
//! size the connection caps so that a flood of clients can never take the
//! descriptors the prober, reloads and the state file need.
//!
//! With the common soft limit of 1,024, a thousand idle TCP connections
//! used to take every descriptor before the connection cap applied; probes
//! then failed with EMFILE and healthy endpoints were marked Degraded.

/// Descriptors kept for everything that is not a connection or a probe:
/// stdio, the runtime's epoll and event descriptors, the file watcher,
/// reading configuration files on reload, writing the state file, logs.
pub const RESERVED: u64 = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft
/// limit now in force (`None` when it cannot be read).
pub fn raise_limit() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
        if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
            return Some(hard);
        }
        Some(soft)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// What each consumer of descriptors may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The soft limit the budget was made from (`None`: unknown, nothing cut).
    pub limit: Option<u64>,
    /// DNS over TCP connections, all listeners together.
    pub tcp: usize,
    /// Admin API connections.
    pub admin: usize,
    /// Probes in flight at once.
    pub probes: usize,
}

/// What the configuration asks for.
#[derive(Clone, Copy, Debug)]
pub struct Wanted {
    /// `dns.max_tcp_connections`.
    pub tcp: usize,
    /// The admin API's connection cap.
    pub admin: usize,
    /// Probes that may be in flight at once (distinct targets, capped).
    pub probes: usize,
    /// Listening sockets (UDP and TCP per DNS address, the admin API).
    pub listeners: usize,
}

impl Budget {
    /// Fits `want` into `limit` descriptors. Probes come first (a probe
    /// denied a descriptor waits for one, it never fails), then the admin
    /// API gets a small share, and DNS over TCP the rest.
    pub fn plan(limit: Option<u64>, want: Wanted) -> Budget {
        let Some(limit) = limit else {
            return Budget {
                limit,
                tcp: want.tcp,
                admin: want.admin,
                probes: want.probes,
            };
        };
        let avail = limit.saturating_sub(RESERVED + want.listeners as u64) as usize;
        if want.tcp + want.admin + want.probes <= avail {
            return Budget {
                limit: Some(limit),
                tcp: want.tcp,
                admin: want.admin,
                probes: want.probes,
            };
        }
        let probes = want.probes.min(avail / 2).max(1);
        let admin = want.admin.min((avail / 16).max(4));
        let tcp = want.tcp.min(avail.saturating_sub(probes + admin)).max(1);
        Budget {
            limit: Some(limit),
            tcp,
            admin,
            probes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(tcp: usize, probes: usize) -> Wanted {
        Wanted {
            tcp,
            admin: 64,
            probes,
            listeners: 5,
        }
    }

    #[test]
    fn everything_fits_under_a_high_limit() {
        let b = Budget::plan(Some(524_288), want(1024, 4096));
        assert_eq!((b.tcp, b.admin, b.probes), (1024, 64, 4096));
    }

    #[test]
    fn a_low_limit_is_shared_without_exceeding_it() {
        for limit in [128u64, 256, 1024] {
            for probes in [1, 100, 4096] {
                let b = Budget::plan(Some(limit), want(1024, probes));
                let used = (b.tcp + b.admin + b.probes) as u64 + RESERVED + 5;
                assert!(
                    used <= limit.max(RESERVED + 5 + 6),
                    "{limit} {probes}: {b:?}"
                );
                assert!(b.probes >= probes.min(((limit - RESERVED - 5) / 2) as usize));
                assert!(b.tcp >= 1 && b.admin >= 1);
            }
        }
        let b = Budget::plan(Some(1024), want(1024, 64));
        assert_eq!((b.tcp, b.admin, b.probes), (832, 59, 64));
    }

    #[test]
    fn unknown_limit_cuts_nothing() {
        let b = Budget::plan(None, want(1024, 10));
        assert_eq!((b.tcp, b.admin, b.probes), (1024, 64, 10));
    }
}
