//! tollgate: parse the command line, load config and catalog, serve.

use std::process::ExitCode;

use clap::Parser;
use tollgate::cli::Cli;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let state = match tollgate::server::load(&cli) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("tollgate: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.is_check() {
        println!(
            "tollgate: configuration ok ({})",
            tollgate::check::summary(&state)
        );
        return ExitCode::SUCCESS;
    }
    match tollgate::server::run(cli, state) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate: {e}");
            ExitCode::from(1)
        }
    }
}

/// mimalloc instead of glibc malloc: pingora allocates and frees per request
/// (header maps, 64 KiB read buffers, tasks); see the commit for the measurement.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
