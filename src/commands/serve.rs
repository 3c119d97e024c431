//! `switchyard serve`: the configuration loaded, every socket bound, and
//! served until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::plural;
use switchyard::app::Server;
use switchyard::config;

/// Runs the server of the configuration at `path` until it is told to
/// stop.
pub(crate) fn run(path: PathBuf) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("switchyard")
        .build()?;
    // Handlers first, then unblock: a signal that arrived since `main`
    // began is delivered to them now, and one that arrives while the
    // configuration loads waits in its stream.
    let signals = runtime.block_on(async { signals::Streams::register() })?;
    signals::unblock();
    let cfg = match config::load(&path) {
        Ok(cfg) => cfg,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            anyhow::bail!(
                "{} problem{} in the configuration; not starting",
                errors.0.len(),
                plural(errors.0.len())
            );
        }
    };
    for w in &cfg.warnings {
        warn!("{w}");
    }
    runtime.block_on(async move {
        let signals::Streams {
            hangup,
            mut terminate,
            mut interrupt,
        } = signals;
        let server = Server::bind(cfg)?.with_hangup(hangup);
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            info!("shutting down");
            signal.cancel();
        });
        server.run(shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Signal handling for `serve`.
pub(crate) mod signals {
    use tokio::signal::unix::{Signal, SignalKind, signal};

    /// The signals `serve` handles: SIGHUP reloads, SIGTERM and SIGINT stop.
    pub struct Streams {
        pub hangup: Signal,
        pub terminate: Signal,
        pub interrupt: Signal,
    }

    impl Streams {
        /// Installs the handlers (inside a runtime).
        pub fn register() -> std::io::Result<Streams> {
            Ok(Streams {
                hangup: signal(SignalKind::hangup())?,
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
    }

    #[cfg(target_os = "linux")]
    fn mask(how: nix::sys::signal::SigmaskHow) {
        use nix::sys::signal::{SigSet, Signal as S, sigprocmask};
        let mut set = SigSet::empty();
        for s in [S::SIGHUP, S::SIGTERM, S::SIGINT] {
            set.add(s);
        }
        let _ = sigprocmask(how, Some(&set), None);
    }

    /// Holds SIGHUP, SIGTERM and SIGINT pending until [`unblock`].
    pub fn block() {
        #[cfg(target_os = "linux")]
        mask(nix::sys::signal::SigmaskHow::SIG_BLOCK);
    }

    /// Delivers them again (pending ones now).
    pub fn unblock() {
        #[cfg(target_os = "linux")]
        mask(nix::sys::signal::SigmaskHow::SIG_UNBLOCK);
    }
}
