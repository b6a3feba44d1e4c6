//! Running the real binaries from tests: a [`Shell`] runs `shoji-wallet`, `shoji-auditor` and
//! the others in one directory against one network file; [`Kill`] stops a child process when a
//! test ends, however it ends.

use crate::binary as bin;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed when dropped.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the CLIs in one directory with one network.
pub struct Shell {
    /// The working directory.
    pub dir: PathBuf,
    /// The network file (`SHOJI_NETWORK`).
    pub network: PathBuf,
}

/// What a run printed and returned.
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output as one JSON value.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

impl Shell {
    /// Runs `program` with `args` and extra environment `env`.
    pub fn run(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(bin(program));
        cmd.current_dir(&self.dir)
            .args(args)
            .env("SHOJI_NETWORK", &self.network)
            .env("SHOJI_WALLET_PASSPHRASE", "correct horse")
            .env("SHOJI_AUDITOR_PASSPHRASE", "auditor pass")
            .env_remove("SHOJI_WALLET")
            .env_remove("SHOJI_AUDITOR_KEY")
            .env_remove("SHOJI_PARAMS")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let Output {
            status,
            stdout,
            stderr,
        } = cmd.output().expect("run binary");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Runs and requires success.
    pub fn ok(&self, program: &str, args: &[&str]) -> Run {
        let r = self.run(program, args, &[]);
        assert_eq!(
            r.code, 0,
            "{program} {args:?} failed:\nstdout: {}\nstderr: {}",
            r.stdout, r.stderr
        );
        r
    }

    /// `shoji-wallet --wallet NAME.wallet --json ARGS`, which must succeed.
    pub fn wallet(&self, name: &str, args: &[&str]) -> Value {
        let w = format!("{name}.wallet");
        let mut all = vec!["--wallet", &w, "--json"];
        all.extend_from_slice(args);
        self.ok("shoji-wallet", &all).json()
    }

    /// Runs a wallet command that must fail with `code` and a message containing `needle`.
    pub fn wallet_fails(
        &self,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        code: i32,
        needle: &str,
    ) {
        let w = format!("{name}.wallet");
        let mut all = vec!["--wallet", &w];
        all.extend_from_slice(args);
        let r = self.run("shoji-wallet", &all, env);
        assert_eq!(
            r.code, code,
            "shoji-wallet {all:?}: expected exit code {code}\nstdout: {}\nstderr: {}",
            r.stdout, r.stderr
        );
        assert!(
            r.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "shoji-wallet {all:?}: expected {needle:?} in the message, got: {}",
            r.stderr
        );
    }

    /// The wallet's balance of USD.
    pub fn balance(&self, name: &str) -> u64 {
        let b = self.wallet(name, &["balance"]);
        b["balances"]
            .as_array()
            .expect("balances")
            .iter()
            .filter(|r| r["name"] == "USD")
            .map(|r| r["balance"].as_u64().expect("balance"))
            .sum()
    }
}

/// `n` UDP ports free on loopback now (bound together, then released), for validators started
/// as processes.
pub fn free_ports(n: usize) -> Vec<u16> {
    let sockets: Vec<std::net::UdpSocket> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("bind"))
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().expect("addr").port())
        .collect()
}

/// Starts `shoji-node devnet --dir devnet` in `dir` and waits for its network file; the
/// devnet stops when the returned guard drops.
pub fn start_devnet(dir: &Path) -> (Kill, PathBuf) {
    shoji_params::dev::parameters().expect("development parameters in the cache");
    let child = Command::new(bin("shoji-node"))
        .current_dir(dir)
        .args(["devnet", "--dir", "devnet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn shoji-node devnet");
    let guard = Kill(child);
    let network = dir.join("devnet").join("devnet.json");
    let start = Instant::now();
    while !network.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "devnet.json not written"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (guard, network)
}
