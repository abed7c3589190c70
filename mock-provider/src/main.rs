//! The `mock-provider` binary: serves the mock on a fixed address for load tests (recording off).

use std::time::Duration;

use mock_provider::{Fault, MockProvider};

const USAGE: &str = "usage: mock-provider [--listen ADDR] [--chunks N] [--chunk-delay-ms MS] \
[--chunk-size BYTES] [--usage PROMPT,COMPLETION] [--workers N] [--fail-key KEY:STATUS]

  --listen ADDR          address to bind (default 127.0.0.1:9000)
  --chunks N             SSE content chunks per stream (default 3)
  --chunk-delay-ms MS    delay before each SSE content chunk (default 0)
  --chunk-size BYTES     bytes of text per content chunk (default: \"hello \")
  --usage P,C            token usage reported (default 11,7)
  --workers N            runtime worker threads (default 1)
  --fail-key KEY:STATUS  answer STATUS (with Retry-After: 30 for 429) to requests with this key";

struct Args {
    listen: String,
    workers: usize,
    mock: MockProvider,
}

fn parse_num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag}: not a valid number: {v:?}"))
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        listen: "127.0.0.1:9000".to_owned(),
        workers: 1,
        mock: MockProvider::new().record(false),
    };
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg, None),
        };
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = match inline.or_else(|| it.next()) {
            Some(v) => v,
            None => return Err(format!("{flag}: missing value")),
        };
        args.mock = match flag.as_str() {
            "--listen" => {
                args.listen = value;
                args.mock
            }
            "--workers" => {
                args.workers = parse_num::<usize>(&flag, &value)?.max(1);
                args.mock
            }
            "--chunks" => args.mock.chunks(parse_num(&flag, &value)?),
            "--chunk-delay-ms" => args
                .mock
                .chunk_delay(Duration::from_millis(parse_num(&flag, &value)?)),
            "--chunk-size" => args.mock.chunk_size(parse_num(&flag, &value)?),
            "--usage" => {
                let (p, c) = value
                    .split_once(',')
                    .ok_or_else(|| format!("{flag}: expected PROMPT,COMPLETION"))?;
                args.mock.usage(parse_num(&flag, p)?, parse_num(&flag, c)?)
            }
            "--fail-key" => {
                let (key, status) = value
                    .rsplit_once(':')
                    .ok_or_else(|| format!("{flag}: expected KEY:STATUS"))?;
                let code: u16 = parse_num(&flag, status)?;
                let fault = Fault::Status {
                    code,
                    retry_after: (code == 429).then(|| "30".to_owned()),
                    body: format!(
                        r#"{{"error":{{"message":"mock {code}","type":"mock","code":null}}}}"#
                    ),
                };
                args.mock.fault_for_key(key, fault)
            }
            _ => return Err(format!("unknown argument: {flag}")),
        };
    }
    Ok(args)
}

fn main() {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("mock-provider: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mock-provider: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen).await?;
        println!("listening on {}", listener.local_addr()?);
        args.mock.serve(listener).await
    });
    if let Err(e) = result {
        eprintln!("mock-provider: {e}");
        std::process::exit(1);
    }
}
