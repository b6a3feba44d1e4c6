//! `shoji-gateway`: HTTP/JSON for a participant's existing systems, beside its validators.

use anyhow::{anyhow, Context};
use clap::Parser;
use shoji_cli::{fail, Exit, Failure};
use shoji_gateway::upstream::Upstream;
use shoji_gateway::{Config, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_STREAMS};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

const EXIT_CODES: [Exit; 3] = [Exit::Other, Exit::Usage, Exit::File];

/// Shortest token accepted: a guess must be hopeless.
const MIN_TOKEN_CHARS: usize = 32;

#[derive(Parser)]
#[command(
    name = "shoji-gateway",
    version,
    about = "HTTP/JSON for existing systems: network status, certified blocks and transaction outcomes, submission, and the event stream (server-sent events). Serves an OpenAPI document at /openapi.json and a status page at /.",
    after_help = Exit::help("token file", &EXIT_CODES)
)]
struct Cli {
    /// The network file (`network.json` from `shoji-node init`, `devnet.json` from `devnet`).
    #[arg(long, default_value = "devnet.json")]
    network: PathBuf,
    /// Where to serve HTTP.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A file holding the bearer token every `/v1` request must carry (at least 32
    /// characters; surrounding whitespace is ignored). Required unless listening on loopback.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Most event streams served at once.
    #[arg(long, default_value_t = DEFAULT_MAX_STREAMS, value_parser = clap::value_parser!(u32).range(1..=4096))]
    max_streams: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(false),
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let token = match &cli.token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the token file {}", path.display()))
                .map_err(|e| fail(Exit::File, e))?;
            let token = text.trim().to_string();
            if token.chars().count() < MIN_TOKEN_CHARS || token.chars().any(char::is_whitespace)
            {
                return Err(fail(
                    Exit::Usage,
                    anyhow!(
                        "the token in {} must be at least {MIN_TOKEN_CHARS} characters, without spaces (for example `openssl rand -hex 32`)",
                        path.display()
                    ),
                ));
            }
            Some(token)
        }
        None if cli.listen.ip().is_loopback() => None,
        None => {
            return Err(fail(
                Exit::Usage,
                anyhow!(
                    "{} is not a loopback address: give --token-file, so that only your systems can submit and read",
                    cli.listen
                ),
            ))
        }
    };
    let network = shoji_cli::load_network(&cli.network)?;
    let config = Config {
        token,
        max_body_bytes: cli.max_body_bytes,
        max_streams: cli.max_streams as usize,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let upstream = Arc::new(Upstream::new(network));
        let (router, _) = shoji_gateway::app(upstream, config);
        let listener = tokio::net::TcpListener::bind(cli.listen)
            .await
            .with_context(|| format!("listening on {}", cli.listen))?;
        let addr = listener.local_addr().context("the listening address")?;
        tracing::info!(%addr, "serving: status page at /, API under /v1, /openapi.json");
        println!("shoji-gateway listening on http://{addr}");
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving HTTP")?;
        Ok::<(), Failure>(())
    })
}
