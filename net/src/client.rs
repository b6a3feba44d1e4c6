//! The client side: a wallet or auditor talking to one node.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, Endpoint, VarInt};
use tokio::time::timeout;

use crate::codes;
use crate::config::NetConfig;
use crate::error::Error;
use crate::frame::{read_frame, write_frame};
use crate::tls::{self, SERVER_NAME};
use crate::validator::transport_config;

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
        let connecting = endpoint.connect_with(client_config, server_addr, SERVER_NAME)?;
        let conn = match timeout(config.stream_timeout, connecting).await {
            Ok(result) => result?,
            Err(_) => return Err(Error::Timeout),
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
