//! Command line: tollgate's own flags plus pingora's (`-d`, `-u`, `-t`, `-c`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use pingora_core::server::configuration::Opt;

#[derive(Debug, Parser)]
#[command(
    name = "tollgate",
    version,
    about = "An edge gateway for LLM APIs on Pingora"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Gateway config file (YAML). Every setting has a default.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Listener address, overriding the config (default 0.0.0.0:8080).
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Catalog file, overriding the config and the embedded catalog.
    #[arg(long, global = true, value_name = "PATH")]
    pub catalog: Option<PathBuf>,
    /// Prometheus listener address (default 127.0.0.1:9091).
    #[arg(long, global = true, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub pingora: Opt,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate config and catalog, print every problem, exit non-zero on error.
    Check,
}

impl Cli {
    /// `tollgate check` or pingora's `-t`.
    pub fn is_check(&self) -> bool {
        matches!(self.command, Some(Command::Check)) || self.pingora.test
    }
}
