//! Builds the pingora server: the gateway service on its listener, Prometheus on
//! its own, with the server conf from `-c` or tuned defaults.

use std::sync::Mutex;

use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::{L4BufferSettings, ListenerConfig};
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::{RunArgs, Server};
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;

use crate::cli::Cli;
use crate::config::{process_env, Config, TlsListener};
use crate::lifecycle::Signals;
use crate::proxy::Gateway;
use crate::state::State;
use crate::upstream::probe::Prober;

/// Loads config and catalog as the CLI says, applying its overrides.
pub fn load(cli: &Cli) -> Result<State, String> {
    let explain = |e| with_lines(e, cli.config.as_deref());
    let mut config = Config::load(cli.config.as_deref(), &process_env).map_err(explain)?;
    if let Some(listen) = cli.listen {
        config.listen = listen;
    }
    if let Some(metrics) = cli.metrics_listen {
        config.metrics_listen = metrics;
    }
    if let Some(catalog) = &cli.catalog {
        config.catalog = Some(catalog.clone());
    }
    if let Some(tls) = &config.tls {
        check_tls(tls)?;
    }
    State::load(config, &process_env).map_err(explain)
}

/// A load error as text, each problem of the config file at its line: those
/// from validation and those from compiling routes and allow-lists name
/// fields alike (error path only, so the file is read again here rather than
/// kept).
fn with_lines(e: crate::load_error::LoadError, file: Option<&std::path::Path>) -> String {
    match file.and_then(|f| Some((f.display().to_string(), std::fs::read_to_string(f).ok()?))) {
        Some((name, text)) => crate::config::with_lines(e, &name, &text).to_string(),
        None => e.to_string(),
    }
}

/// Reads the TLS listener's certificate chain and key now: Pingora's acceptor
/// would panic on a bad file when the service starts.
fn check_tls(tls: &TlsListener) -> Result<(), String> {
    let (cert, key) = (
        tls.cert.display().to_string(),
        tls.key.display().to_string(),
    );
    match pingora_rustls::load_certs_and_key_files(&cert, &key) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(format!(
            "tls: `{cert}` holds no certificate or `{key}` no private key (PEM expected)"
        )),
        Err(e) => Err(format!("tls: cannot read `{cert}` / `{key}`: {e}")),
    }
}

/// Pingora's server conf: the `-c` file, or defaults with one worker thread per core.
fn server_conf(opt: &Opt) -> Result<ServerConf, String> {
    match &opt.conf {
        Some(_) => ServerConf::load_yaml_with_opt_override(opt).map_err(|e| e.to_string()),
        None => {
            let mut conf = ServerConf::default();
            conf.merge_with_opt(opt);
            conf.threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            // SIGTERM waits this long for in-flight streams before exiting.
            conf.grace_period_seconds = Some(5);
            conf.graceful_shutdown_timeout_seconds = Some(300);
            Ok(conf)
        }
    }
}

/// Starts serving; never returns.
pub fn run(cli: Cli, state: State) -> Result<(), String> {
    let conf = server_conf(&cli.pingora)?;
    let opt = Opt {
        upgrade: cli.pingora.upgrade,
        daemon: cli.pingora.daemon,
        nocapture: cli.pingora.nocapture,
        test: false,
        conf: None,
    };
    let listen = state.config.listen.to_string();
    let tls = state.config.tls.clone();
    let read_buffer = state.config.downstream.read_buffer_bytes;
    let metrics_listen = state.config.metrics_listen.to_string();
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    let gateway = Gateway::new(state);
    crate::limits::gauge::register(gateway.state.clone());
    if let Some(m) = crate::metrics::metrics() {
        for result in ["ok", "error"] {
            m.reloads.with_label_values(&[result]);
        }
    }
    let signals = Signals {
        cli,
        state: gateway.state.clone(),
        in_flight: gateway.in_flight.clone(),
        draining: gateway.draining.clone(),
        budget: gateway.budget.clone(),
        phases: Mutex::new(Some(server.watch_execution_phase())),
        upgrade_sock: server.configuration.upgrade_sock.clone().into(),
    };
    let prober = background_service(
        "endpoint health checks",
        Prober {
            state: gateway.state.clone(),
        },
    );
    let mut proxy = Service::new(
        "tollgate".to_string(),
        crate::proxy::Front(std::sync::Arc::new(gateway)),
    );
    let buffers = L4BufferSettings {
        read: Some(read_buffer),
        write: Some(0),
    };
    proxy.add_listener(
        // No write buffer: tollgate writes each answer's header and body in one
        // writev, and streamed chunks must not wait in a buffer; pingora's
        // default (1,460 bytes) would be held by every connection and copied
        // through by every answer. The one cost: a sized answer on pingora's
        // session (requests tollgate's own reader hands over: chunked,
        // `Expect`, HTTP/1.0) leaves in two sends, header then body.
        ListenerConfig::tcp(listen.as_str()).l4_buffer(buffers),
    );
    if let Some(tls) = &tls {
        let mut settings = TlsSettings::intermediate(
            &tls.cert.display().to_string(),
            &tls.key.display().to_string(),
        )
        .map_err(|e| format!("tls: {e}"))?;
        // h2 and HTTP/1.1 by ALPN.
        settings.enable_h2();
        // The same buffers as the plain listener's under TLS: rustls keeps its
        // own, and pingora's default 64 KiB read buffer under it would be
        // zero-filled and held by every connection.
        proxy.add_listener(
            ListenerConfig::tcp(tls.listen.to_string())
                .tls(settings)
                .l4_buffer(buffers),
        );
        log::info!("tollgate listening with TLS on {}", tls.listen);
    }

    let mut metrics = pingora_prometheus::prometheus_http_service();
    metrics.add_tcp(&metrics_listen);

    server.add_service(proxy);
    server.add_service(metrics);
    server.add_service(prober);
    log::info!("tollgate listening on {listen}, metrics on {metrics_listen}");
    server.run(RunArgs {
        shutdown_signal: Box::new(signals),
    });
    std::process::exit(0)
}
