//! tollgate: an edge gateway for LLM APIs on Cloudflare's Pingora.
//!
//! The request path, one module a stage:
//! listen (`server`) → authenticate (`auth`) → read and scan the body (`request`)
//! → resolve the model (`resolve`, `catalog`) → choose key and endpoint and build
//! the upstream request (`upstream`) → exchange and relay (`upstream::exchange`),
//! with `proxy` as the spine that calls each stage.

#![forbid(unsafe_code)]

pub mod access_log;
pub mod account;
pub mod auth;
pub mod billing;
pub mod budget;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod config;
pub mod deadline;
mod decimal;
pub mod downstream;
pub mod error;
mod jsonbytes;
pub mod ledger;
pub mod lifecycle;
pub mod limits;
pub mod load_error;
pub mod metrics;
pub mod names;
pub mod policy;
pub mod proxy;
pub mod request;
pub mod resolve;
pub mod secret;
pub mod server;
pub mod state;
pub mod upstream;
pub mod usage;
mod wire;
