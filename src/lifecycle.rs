//! The process under signals. Pingora's own watcher knows SIGTERM (graceful
//! stop), SIGQUIT (hand the listeners to a new binary started with `-u`, then
//! stop) and SIGINT (stop now); tollgate's adds SIGHUP (reload), SIGUSR2 (start
//! the successor itself, as nginx does, so it stays in the service's cgroup, then
//! hand over as for SIGQUIT) and, once a graceful stop has closed the listeners,
//! exits as soon as the last request ends instead of sleeping out the whole grace
//! period as Pingora 0.9 does.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora_core::server::{ExecutionPhase, ShutdownSignal, ShutdownSignalWatch};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::broadcast;

use crate::budget::Budget;
use crate::cli::Cli;
use crate::metrics::metrics;
use crate::state::State;

/// After the listeners close, requests may still be on their way in over open
/// connections: wait at least this long, then for this long without any.
const SETTLE: Duration = Duration::from_millis(500);
const QUIET: Duration = Duration::from_millis(200);

pub struct Signals {
    pub cli: Cli,
    pub state: Arc<ArcSwap<State>>,
    pub in_flight: Arc<AtomicUsize>,
    pub draining: Arc<AtomicBool>,
    pub budget: Arc<Budget>,
    pub phases: Mutex<Option<broadcast::Receiver<ExecutionPhase>>>,
    /// Pingora's upgrade socket, where a successor waits for the listeners.
    pub upgrade_sock: PathBuf,
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let mut hup = listen(SignalKind::hangup());
        let mut usr2 = listen(SignalKind::user_defined2());
        let mut quit = listen(SignalKind::quit());
        let mut term = listen(SignalKind::terminate());
        let mut int = listen(SignalKind::interrupt());
        let stop = loop {
            tokio::select! {
                _ = hup.recv() => {
                    reload(&self.cli, &self.state);
                    continue;
                }
                _ = usr2.recv() => {
                    match start_successor(&self.upgrade_sock).await {
                        Ok(()) => break ShutdownSignal::GracefulUpgrade,
                        Err(e) => log::error!("upgrade aborted, still serving: {e}"),
                    }
                    continue;
                }
                _ = quit.recv() => break ShutdownSignal::GracefulUpgrade,
                _ = term.recv() => break ShutdownSignal::GracefulTerminate,
                _ = int.recv() => break ShutdownSignal::FastShutdown,
            }
        };
        if !matches!(stop, ShutdownSignal::FastShutdown) {
            self.draining.store(true, Ordering::Relaxed);
            let phases = self
                .phases
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(phases) = phases {
                let (in_flight, budget) = (self.in_flight.clone(), self.budget.clone());
                std::thread::spawn(move || exit_when_idle(phases, &in_flight, &budget));
            }
        }
        stop
    }
}

fn listen(kind: SignalKind) -> tokio::signal::unix::Signal {
    match signal(kind) {
        Ok(s) => s,
        // Only fails without a runtime or on an invalid signal: neither happens here.
        Err(e) => panic!("cannot listen for signal {kind:?}: {e}"),
    }
}

/// How long a successor may take to be ready for the listeners.
const SUCCESSOR_READY: Duration = Duration::from_secs(10);

/// Starts this binary again (the file now at its path: the new version) with the
/// same arguments plus `-u`, and waits until it listens on the upgrade socket.
/// A successor that exits first (bad config, bad binary) aborts the upgrade.
async fn start_successor(sock: &Path) -> Result<(), String> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    if args.is_empty() {
        return Err("no program name".into());
    }
    let program = args.remove(0);
    if !args.iter().any(|a| a == "-u" || a == "--upgrade") {
        args.push("-u".into());
    }
    // A socket left by an earlier upgrade would look ready.
    let _ = std::fs::remove_file(sock);
    let mut child = std::process::Command::new(&program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.to_string_lossy()))?;
    log::info!("upgrade: started successor pid {}", child.id());
    let deadline = Instant::now() + SUCCESSOR_READY;
    let mut daemonized = false;
    while Instant::now() < deadline {
        if sock.exists() {
            // Reaped later by whoever inherits it; a daemonizing child has exited already.
            std::thread::spawn(move || child.wait());
            return Ok(());
        }
        match child.try_wait() {
            // `-d`: the first process exits once the daemon is forked.
            Ok(Some(status)) if status.success() => daemonized = true,
            Ok(Some(status)) if !daemonized => return Err(format!("successor exited: {status}")),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    Err(format!(
        "successor not ready on {} within {SUCCESSOR_READY:?}",
        sock.display()
    ))
}

/// Reloads config, catalog and keys; the live state is replaced only when the
/// new one is valid, and requests in flight keep the one they started with.
pub fn reload(cli: &Cli, live: &ArcSwap<State>) {
    let result = crate::server::load(cli).map(|mut next| {
        let current = live.load();
        let (now, was) = (&next.config, &current.config);
        if now.listen != was.listen || now.metrics_listen != was.metrics_listen {
            log::warn!("reload: listener addresses change only with a restart or upgrade");
        }
        if now.ledger != was.ledger || now.rate_limits != was.rate_limits {
            log::warn!(
                "reload: ledger and rate_limits settings change only with a restart or upgrade"
            );
        }
        next.inherit(&current);
        crate::access_log::reopen();
        let summary = crate::check::summary(&next);
        live.store(Arc::new(next));
        summary
    });
    let outcome = match result {
        Ok(summary) => {
            log::info!("reload: ok ({summary})");
            "ok"
        }
        Err(e) => {
            log::error!("reload refused, still serving the previous configuration: {e}");
            "error"
        }
    };
    if let Some(m) = metrics() {
        m.reloads.with_label_values(&[outcome]).inc();
    }
}

/// Once Pingora's grace period starts (listeners closed), exits as soon as no
/// request is in flight, after making settled credits durable.
fn exit_when_idle(
    mut phases: broadcast::Receiver<ExecutionPhase>,
    in_flight: &AtomicUsize,
    budget: &Budget,
) {
    loop {
        match phases.blocking_recv() {
            Ok(ExecutionPhase::ShutdownGracePeriod) => break,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
    std::thread::sleep(SETTLE);
    let mut idle_since: Option<Instant> = None;
    loop {
        if in_flight.load(Ordering::Acquire) == 0 {
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= QUIET {
                break;
            }
        } else {
            idle_since = None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    log::info!("graceful shutdown: no request in flight, exiting");
    if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        rt.block_on(budget.flush());
    }
    std::process::exit(0);
}
