//! A dedicated thread with its own Tokio runtime for the Redis ledger's I/O, started on first use.
//!
//! Redis connections and the ledger's background task live on this runtime, so they keep working
//! whichever runtime the callers use (Pingora's per-service runtimes, or a temporary one that
//! built the ledger at startup and is gone since). A process that forks (Pingora's daemon mode)
//! keeps no threads: the first use in the child notices the new process id and starts afresh.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Makes the per-runtime state on a freshly started runtime (and may spawn tasks on it).
type Make<S> = Box<dyn Fn(&Handle) -> Result<Arc<S>, String> + Send + Sync>;

/// The runtime thread of this process and the state `S` made for it.
pub(super) struct Engine<S> {
    running: Mutex<Option<Running<S>>>,
    make: Make<S>,
}

struct Running<S> {
    pid: u32,
    handle: Handle,
    state: Arc<S>,
    /// Dropping it ends the thread (and its runtime, with every task on it).
    _stop: oneshot::Sender<()>,
}

impl<S: Send + Sync + 'static> Engine<S> {
    /// An engine, not started yet, whose state `make` creates on each start.
    pub(super) fn new(
        make: impl Fn(&Handle) -> Result<Arc<S>, String> + Send + Sync + 'static,
    ) -> Self {
        Engine {
            running: Mutex::new(None),
            make: Box::new(make),
        }
    }

    /// The runtime's handle and state, starting the thread first if this process has none yet
    /// (the first call waits for the thread to come up).
    pub(super) fn get(&self) -> Result<(Handle, Arc<S>), String> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = std::process::id();
        if let Some(r) = running.as_ref().filter(|r| r.pid == pid) {
            return Ok((r.handle.clone(), r.state.clone()));
        }
        if let Some(stale) = running.take() {
            // Made by the parent of a fork: its thread does not exist here, so dropping its
            // runtime handles and connections could wait on nothing. Leave them be.
            std::mem::forget(stale);
        }
        let (handle, stop) = start()?;
        let state = (self.make)(&handle)?;
        *running = Some(Running {
            pid,
            handle: handle.clone(),
            state: state.clone(),
            _stop: stop,
        });
        Ok((handle, state))
    }

    /// Runs the future `f` makes on the engine's runtime and waits for its result from any
    /// runtime.
    pub(super) async fn run<T, F, Fut>(&self, f: F) -> Result<T, String>
    where
        F: FnOnce(Arc<S>) -> Fut,
        Fut: Future<Output = Result<T, String>> + Send + 'static,
        T: Send + 'static,
    {
        let (handle, state) = self.get()?;
        match handle.spawn(f(state)).await {
            Ok(result) => result,
            Err(e) => Err(format!("ledger task failed: {e}")),
        }
    }
}

/// Starts the thread and its current-thread runtime; returns the runtime's handle and the
/// sender whose drop stops it.
fn start() -> Result<(Handle, oneshot::Sender<()>), String> {
    let (ready, handle) = std::sync::mpsc::sync_channel(1);
    let (stop, stopped) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("tollgate-redis".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => {
                    let _ = ready.send(Ok(rt.handle().clone()));
                    rt.block_on(async {
                        let _ = stopped.await;
                    });
                }
                Err(e) => {
                    let _ = ready.send(Err(format!("cannot start a runtime: {e}")));
                }
            }
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    let handle = handle
        .recv()
        .map_err(|_| "the runtime thread died".to_string())??;
    Ok((handle, stop))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn works_from_a_runtime_that_is_gone_and_starts_once() {
        let starts = Arc::new(AtomicUsize::new(0));
        let counted = starts.clone();
        let engine: Engine<usize> = Engine::new(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new(7))
        });
        for _ in 0..2 {
            // Each temporary runtime is dropped after use; the engine's keeps running.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let got = rt.block_on(engine.run(|s| async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                Ok(*s + 1)
            }));
            assert_eq!(got, Ok(8));
        }
        assert_eq!(starts.load(Ordering::SeqCst), 1);
    }
}
