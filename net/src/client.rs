//! The client side: a wallet or auditor talking to one node.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, Endpoint, VarInt};
use std::time::Duration;
use tokio::time::{timeout, Instant};

use crate::codes;
use crate::config::NetConfig;
use crate::error::Error;
use crate::frame::{read_frame, write_frame};
use crate::tls::{self, SERVER_NAME};
use crate::validator::transport_config;

/// First pause before trying again after a validator refused the handshake.
const REFUSED_FIRST_PAUSE: Duration = Duration::from_millis(20);
/// Longest pause between attempts after refusals.
const REFUSED_MAX_PAUSE: Duration = Duration::from_millis(500);

/// Whether a connection attempt failed because the server refused the handshake (QUIC's
/// CONNECTION_REFUSED: a validator at its handshake limits), which is worth another attempt.
fn refused(e: &quinn::ConnectionError) -> bool {
    matches!(e, quinn::ConnectionError::ConnectionClosed(c)
        if c.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED)
}

/// A server-authenticated connection to a node. The node's key is pinned (from genesis); the
/// client presents no certificate. Each request uses its own bidirectional stream, so requests
/// may be issued concurrently from several tasks.
#[derive(Debug)]
pub struct ClientConnection {
    endpoint: Endpoint,
    conn: Connection,
    config: NetConfig,
}

impl ClientConnection {
    /// Connects to the node at `server_addr` whose key must be `server_key`, with the default
    /// configuration. Must be called within a Tokio runtime.
    pub async fn connect(
        server_addr: SocketAddr,
        server_key: &VerifyingKey,
    ) -> Result<ClientConnection, Error> {
        Self::connect_with(server_addr, server_key, NetConfig::default()).await
    }

    /// Like [`ClientConnection::connect`], with a given configuration.
    pub async fn connect_with(
        server_addr: SocketAddr,
        server_key: &VerifyingKey,
        config: NetConfig,
    ) -> Result<ClientConnection, Error> {
        config.validate()?;
        let local: SocketAddr = if server_addr.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let endpoint = Endpoint::client(local).map_err(Error::Bind)?;
        let tls = tls::client_config(server_key, None)?;
        let quic = QuicClientConfig::try_from(tls).map_err(|e| Error::Tls(e.to_string()))?;
        let mut client_config = quinn::ClientConfig::new(Arc::new(quic));
        client_config.transport_config(Arc::new(transport_config(&config, false)));
        // A validator sheds load by refusing handshakes (too many in progress, from this
        // address or in all): a refusal says "later", so try again after a pause, doubling,
        // until `stream_timeout` has passed. The pause is spread by the local port, so that
        // clients refused together do not all come back together.
        let deadline = Instant::now() + config.stream_timeout;
        let spread = u64::from(endpoint.local_addr().map_or(0, |a| a.port()));
        let mut pause = REFUSED_FIRST_PAUSE;
        let conn = loop {
            let connecting =
                endpoint.connect_with(client_config.clone(), server_addr, SERVER_NAME)?;
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, connecting).await {
                Ok(Ok(conn)) => break conn,
                Ok(Err(e)) if refused(&e) => {
                    let jitter = Duration::from_millis(spread % (pause.as_millis() as u64 + 1));
                    let wait = pause + jitter;
                    if Instant::now() + wait >= deadline {
                        return Err(e.into());
                    }
                    tokio::time::sleep(wait).await;
                    pause = (pause * 2).min(REFUSED_MAX_PAUSE);
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(Error::Timeout),
            }
        };
        Ok(ClientConnection {
            endpoint,
            conn,
            config,
        })
    }

    /// Sends `request` and waits for the response (bounded by
    /// [`NetConfig::stream_timeout`]).
    pub async fn request(&self, request: &[u8]) -> Result<Vec<u8>, Error> {
        let max = self.config.max_frame_size;
        let exchange = async {
            let (mut send, mut recv) = self.conn.open_bi().await?;
            write_frame(&mut send, request, max).await?;
            send.finish()?;
            read_frame(&mut recv, max).await?.ok_or(Error::NoResponse)
        };
        match timeout(self.config.stream_timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout),
        }
    }

    /// The underlying QUIC connection (for streams outside the request/response pattern).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Closes the connection and waits briefly for the server to be told.
    pub async fn close(self) {
        self.shutdown().await
    }

    /// [`ClientConnection::close`] through a reference (for an owner being dropped): the
    /// connection is closed, and the server told within a second, so it frees the
    /// connection's slot at once rather than after its idle timeout.
    pub async fn shutdown(&self) {
        self.conn
            .close(VarInt::from_u32(codes::SHUTDOWN), b"client closed");
        let _ = timeout(std::time::Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }
}
