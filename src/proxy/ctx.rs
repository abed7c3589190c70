//! The per-request context, grouped by theme: auth, route, attempt, usage, response.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::auth::Billing;
use crate::ledger::Reservation;
use crate::limits::Lease;
use crate::state::State;
use crate::upstream::exchange::Cut;
use crate::usage::Meter;

#[derive(Debug, Default)]
pub struct Ctx {
    pub started: Option<Instant>,
    /// The state the request was routed with: its indices point into it.
    pub state: Option<Arc<State>>,
    pub auth: AuthCtx,
    pub route: RouteCtx,
    pub attempt: AttemptCtx,
    pub usage: Meter,
    pub response: ResponseCtx,
    /// The request's hold on its access key's rate limits.
    pub limits: Option<Lease>,
    /// Counts the request as in flight until the context is dropped.
    pub in_flight: Option<InFlight>,
}

/// One request in the gateway's in-flight count.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    pub fn enter(count: &Arc<AtomicUsize>) -> InFlight {
        count.fetch_add(1, Ordering::AcqRel);
        InFlight(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug, Default)]
pub struct AuthCtx {
    /// Index of the access key used, if any.
    pub access_key: Option<usize>,
    pub billing: Option<Billing>,
    /// Credits held for this request until it is settled.
    pub reservation: Option<Reservation>,
}

#[derive(Debug, Default)]
pub struct RouteCtx {
    /// Provider index of the attempt that answered (or the last tried).
    pub provider: Option<usize>,
    /// Catalog model index, `None` for an unlisted model.
    pub model: Option<usize>,
    /// The model name sent upstream, kept for unlisted models (price rows).
    pub unlisted_model: Option<std::sync::Arc<str>>,
    /// Bytes of the client's request body, for estimating the input of a
    /// stream cut before its usage report.
    pub prompt_bytes: u64,
}

#[derive(Debug, Default)]
pub struct AttemptCtx {
    pub count: u32,
    /// Name of the managed key used by the answering attempt.
    pub key: Option<std::sync::Arc<str>>,
}

#[derive(Debug, Default)]
pub struct ResponseCtx {
    pub status: u16,
    /// The error code when tollgate answered itself.
    pub error: Option<&'static str>,
    pub first_byte: Option<Instant>,
    /// The exchange broke after the first byte (client or upstream).
    pub aborted: bool,
    /// Which side broke it.
    pub cut: Option<Cut>,
}
