//! Builds the pingora server: the gateway service on its listener, Prometheus on
//! its own, with the server conf from `-c` or tuned defaults.

use std::sync::Mutex;

use pingora_core::apps::HttpServerOptions;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::{RunArgs, Server};
use pingora_core::services::background::background_service;
use pingora_proxy::ProxyServiceBuilder;

use crate::cli::Cli;
use crate::config::{process_env, Config};
use crate::lifecycle::Signals;
use crate::proxy::Gateway;
use crate::state::State;
use crate::upstream::probe::Prober;

/// Loads config and catalog as the CLI says, applying its overrides.
pub fn load(cli: &Cli) -> Result<State, String> {
    let mut config =
        Config::load(cli.config.as_deref(), &process_env).map_err(|e| e.to_string())?;
    if let Some(listen) = cli.listen {
        config.listen = listen;
    }
    if let Some(metrics) = cli.metrics_listen {
        config.metrics_listen = metrics;
    }
    if let Some(catalog) = &cli.catalog {
        config.catalog = Some(catalog.clone());
    }
    State::load(config, &process_env).map_err(|e| e.to_string())
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
    let metrics_listen = state.config.metrics_listen.to_string();
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    let mut options = HttpServerOptions::default();
    options.h2c = true;
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
    let mut proxy = ProxyServiceBuilder::new(&server.configuration, gateway)
        .name("tollgate")
        .server_options(options)
        .build();
    proxy.add_tcp(&listen);

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
