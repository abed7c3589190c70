//! A private redis-server for tests of shared state.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::free_port;

/// A redis-server of the test's own on a free port; killed on drop.
pub struct Redis(std::process::Child, pub u16);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts one; `None` (the test skips) only outside CI when redis-server is missing.
pub fn start() -> Option<Redis> {
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        assert!(std::env::var("CI").is_err(), "CI must have redis-server");
        eprintln!("SKIPPED: redis-server not installed");
        return None;
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(Redis(child, port));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("redis-server did not start");
}

impl Redis {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.1)
    }
}
