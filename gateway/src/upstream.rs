//! The gateway's link to the validators: one [`Client`] shared by every HTTP request, replaced
//! by a connection to another validator when the one it has fails or is caught lying.

use shoji_client::{Client, ClientError, Network};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// A connection to the network that fails over.
///
/// The client library is blocking (it runs its own single-threaded runtime), so every call
/// runs on a blocking thread ([`Upstream::call`]); several calls share the one QUIC connection,
/// each on a stream of its own.
pub struct Upstream {
    network: Network,
    current: Mutex<Option<Arc<Client>>>,
}

/// Whether a call may be repeated against another validator when the first one fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Reads: ask the next validator.
    Yes,
    /// A submission: the first validator may have ordered it; the caller decides.
    No,
}

impl Upstream {
    /// An upstream for `network`; it connects on first use.
    pub fn new(network: Network) -> Upstream {
        Upstream {
            network,
            current: Mutex::new(None),
        }
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Runs `f` with a connected client on a blocking thread. With [`Retry::Yes`], a failed
    /// connection or an answer the client's checks refuse (a lie, a bad certificate, a
    /// malformed answer) moves the gateway to another validator, and `f` runs again there, once
    /// per validator at most.
    pub async fn call<T, F>(self: &Arc<Self>, retry: Retry, f: F) -> Result<T, ClientError>
    where
        T: Send + 'static,
        F: Fn(&Client) -> Result<T, ClientError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.call_blocking(retry, &f))
            .await
            .unwrap_or_else(|e| Err(ClientError::Unreachable(format!("the call failed: {e}"))))
    }

    fn call_blocking<T>(
        &self,
        retry: Retry,
        f: &dyn Fn(&Client) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let mut avoid = BTreeSet::new();
        loop {
            let client = self.client(&avoid)?;
            let result = f(&client);
            let failed = match &result {
                Err(ClientError::Connection { node, .. })
                | Err(ClientError::Lied { node, .. })
                | Err(ClientError::BadCertificate { node, .. })
                | Err(ClientError::Protocol { node, .. }) => Some(*node),
                _ => None,
            };
            let Some(node) = failed else {
                return result;
            };
            if let Err(e) = &result {
                tracing::warn!(validator = node, "{e}; moving to another validator");
            }
            self.forget(&client);
            drop(client);
            avoid.insert(node);
            if retry == Retry::No || avoid.len() >= self.network.addrs.len() {
                return result;
            }
        }
    }

    /// The current client, or a new one to a validator not in `avoid`.
    fn client(&self, avoid: &BTreeSet<u16>) -> Result<Arc<Client>, ClientError> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = current.as_ref().filter(|c| !avoid.contains(&c.node())) {
            return Ok(c.clone());
        }
        let client = Arc::new(Client::connect_except(&self.network, avoid)?);
        tracing::info!(validator = client.node(), "connected");
        // The client it replaces closes when its last call ends, on that call's thread.
        *current = Some(client.clone());
        Ok(client)
    }

    /// Drops `client` as the current one, if it still is.
    fn forget(&self, client: &Arc<Client>) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, client)) {
            *current = None;
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        // A client closes its connection on its own runtime, which cannot start inside another
        // runtime's task: close it on a thread of its own when dropped from async code.
        let current = self
            .current
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(client) = current {
            if tokio::runtime::Handle::try_current().is_ok() {
                let _ = std::thread::spawn(move || drop(client)).join();
            }
        }
    }
}
