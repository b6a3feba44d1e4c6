//! A delaying UDP relay: what `netem` would do, for machines without it. It stands in front of
//! one validator's socket, at the address everyone else dials; every datagram through it, both
//! ways, is held for a one-way delay (with jitter) and may be dropped at random, and datagrams
//! from chosen sources can be cut off altogether (a partition).
//!
//! Each direction of each path is a delay line: datagrams leave in the order they came, each no
//! earlier than its own delay allows, so jitter varies the delay without reordering. A single
//! path seldom reorders, and QUIC takes a datagram overtaken by three later ones as lost and
//! halves its congestion window: a relay that reordered (as one task per datagram did, even
//! without jitter) measured its own artefact, not the network's latency.
//!
//! QUIC runs over it unchanged: peers authenticate by their pinned keys, not by their addresses.
//!
//! Each source gets its own upstream socket towards the validator, so the validator sees one
//! distinct address per peer or client, as it would without the relay. A relay serves
//! benchmarks and tests; it is never part of a deployed network.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// Largest datagram relayed (QUIC's are at most about 1,500 bytes on loopback paths).
const MAX_DATAGRAM: usize = 65_535;

/// What a path does to the datagrams on it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PathConditions {
    /// Each datagram's one-way delay (half the round-trip time).
    pub one_way: Duration,
    /// A uniformly random extra delay in `[-jitter, +jitter]`, the total never below zero.
    pub jitter: Duration,
    /// The probability of dropping a datagram, in `[0, 1]`.
    pub loss: f64,
}

impl PathConditions {
    /// The conditions of a path with round-trip time `rtt`, jitter and loss: half the RTT each
    /// way.
    pub fn from_rtt(rtt: Duration, jitter: Duration, loss: f64) -> Self {
        PathConditions {
            one_way: rtt / 2,
            jitter,
            loss: loss.clamp(0.0, 1.0),
        }
    }
}

/// What every forwarding task of a relay reads.
struct Control {
    conditions: Mutex<PathConditions>,
    /// Sources whose datagrams (and the answers to them) are dropped.
    cut: Mutex<BTreeSet<SocketAddr>>,
    /// State of the xorshift generator deciding loss and jitter (not cryptographic).
    random: Mutex<u64>,
}

impl Control {
    /// The delay for the next datagram, or `None` to drop it.
    fn fate(&self, source: SocketAddr) -> Option<Duration> {
        if self.cut.lock().is_ok_and(|c| c.contains(&source)) {
            return None;
        }
        let c = self.conditions.lock().map(|c| *c).unwrap_or_default();
        let (draw_loss, draw_jitter) = {
            let mut s = self.random.lock().ok()?;
            let mut next = || {
                *s ^= *s << 13;
                *s ^= *s >> 7;
                *s ^= *s << 17;
                (*s >> 11) as f64 / (1u64 << 53) as f64
            };
            (next(), next())
        };
        if draw_loss < c.loss {
            return None;
        }
        let jitter = c.jitter.as_secs_f64() * (2.0 * draw_jitter - 1.0);
        Some(Duration::from_secs_f64(
            (c.one_way.as_secs_f64() + jitter).max(0.0),
        ))
    }
}

/// A running relay in front of one validator. Dropping it stops relaying.
pub struct Relay {
    addr: SocketAddr,
    control: Arc<Control>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Relays datagrams arriving at `public` (the address others dial) to `target` (the
    /// validator's own socket) and the answers back, under `conditions`. Must be called within
    /// a Tokio runtime, on which it runs.
    pub fn start(
        public: std::net::UdpSocket,
        target: SocketAddr,
        conditions: PathConditions,
    ) -> std::io::Result<Relay> {
        public.set_nonblocking(true)?;
        let addr = public.local_addr()?;
        let public = Arc::new(UdpSocket::from_std(public)?);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            ^ u64::from(addr.port());
        let control = Arc::new(Control {
            conditions: Mutex::new(conditions),
            cut: Mutex::new(BTreeSet::new()),
            random: Mutex::new(seed | 1),
        });
        let task = tokio::spawn(inbound(public, target, control.clone()));
        Ok(Relay {
            addr,
            control,
            task,
        })
    }

    /// The address others dial.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes the path's conditions from the next datagram on.
    pub fn set_conditions(&self, conditions: PathConditions) {
        if let Ok(mut c) = self.control.conditions.lock() {
            *c = conditions;
        }
    }

    /// Drops every datagram from `sources` and every answer to them, until [`Relay::heal`].
    pub fn cut(&self, sources: impl IntoIterator<Item = SocketAddr>) {
        if let Ok(mut c) = self.control.cut.lock() {
            c.extend(sources);
        }
    }

    /// Relays from every source again.
    pub fn heal(&self) {
        if let Ok(mut c) = self.control.cut.lock() {
            c.clear();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One direction of one path: datagrams sent from `socket` to `to` in the order they were put
/// in, each once its delay has passed. Dropping it stops the line.
struct Line {
    queue: tokio::sync::mpsc::UnboundedSender<(Instant, Vec<u8>)>,
    /// When the latest datagram leaves: no later one leaves before it.
    last: Instant,
    task: tokio::task::JoinHandle<()>,
}

impl Line {
    fn new(socket: Arc<UdpSocket>, to: SocketAddr) -> Line {
        let (queue, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
        let task = tokio::spawn(async move {
            while let Some((at, datagram)) = rx.recv().await {
                tokio::time::sleep_until(at).await;
                // A datagram lost on the way is what the relay simulates anyway.
                let _ = socket.send_to(&datagram, to).await;
            }
        });
        Line {
            queue,
            last: Instant::now(),
            task,
        }
    }

    /// Sends `datagram` after `delay`, and not before the datagrams put in earlier.
    fn deliver(&mut self, datagram: &[u8], delay: Duration) {
        let at = (Instant::now() + delay).max(self.last);
        self.last = at;
        let _ = self.queue.send((at, datagram.to_vec()));
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Datagrams from sources to the validator, each source through its own upstream socket whose
/// answers go back from the public socket.
async fn inbound(public: Arc<UdpSocket>, target: SocketAddr, control: Arc<Control>) {
    let mut upstreams: HashMap<SocketAddr, (Line, tokio::task::JoinHandle<()>)> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let Ok((n, source)) = public.recv_from(&mut buf).await else {
            // An ICMP error reported on the socket (a source went away): keep relaying.
            tokio::task::yield_now().await;
            continue;
        };
        let line = match upstreams.entry(source) {
            std::collections::hash_map::Entry::Occupied(e) => &mut e.into_mut().0,
            std::collections::hash_map::Entry::Vacant(e) => {
                let Ok(u) = UdpSocket::bind(SocketAddr::new(target.ip(), 0)).await else {
                    continue;
                };
                let u = Arc::new(u);
                let back =
                    tokio::spawn(outbound(u.clone(), public.clone(), source, control.clone()));
                &mut e.insert((Line::new(u, target), back)).0
            }
        };
        if let Some(delay) = control.fate(source) {
            line.deliver(&buf[..n], delay);
        }
    }
}

/// The validator's answers to `source`, relayed back from the public socket.
async fn outbound(
    upstream: Arc<UdpSocket>,
    public: Arc<UdpSocket>,
    source: SocketAddr,
    control: Arc<Control>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut line = Line::new(public, source);
    loop {
        let Ok((n, _)) = upstream.recv_from(&mut buf).await else {
            tokio::task::yield_now().await;
            continue;
        };
        if let Some(delay) = control.fate(source) {
            line.deliver(&buf[..n], delay);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP server that sends every datagram back, behind a relay with `conditions`.
    async fn echo_server_behind_relay(conditions: PathConditions) -> Relay {
        let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let target = server.local_addr().expect("addr");
        let relay = Relay::start(
            std::net::UdpSocket::bind("127.0.0.1:0").expect("bind"),
            target,
            conditions,
        )
        .expect("relay");
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            while let Ok((n, from)) = server.recv_from(&mut buf).await {
                let _ = server.send_to(&buf[..n], from).await;
            }
        });
        relay
    }

    /// Sends `ping` to `to` and waits half a second for the answer: its length and the round
    /// trip.
    async fn echo(
        client: &UdpSocket,
        to: SocketAddr,
        buf: &mut [u8; 64],
    ) -> Option<(usize, Duration)> {
        client.send_to(b"ping", to).await.expect("send");
        let start = Instant::now();
        let got = tokio::time::timeout(Duration::from_millis(500), client.recv(buf)).await;
        got.ok().and_then(|r| r.ok()).map(|n| (n, start.elapsed()))
    }

    /// A datagram and its answer each take the one-way delay; a cut source gets nothing
    /// through until healed; all of a path with loss 1 is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delays_both_ways_cuts_and_drops() {
        let relay = echo_server_behind_relay(PathConditions::from_rtt(
            Duration::from_millis(60),
            Duration::ZERO,
            0.0,
        ))
        .await;
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let mut buf = [0u8; 64];
        let (n, rtt) = echo(&client, relay.addr(), &mut buf)
            .await
            .expect("an answer");
        assert_eq!(&buf[..n], b"ping");
        assert!(rtt >= Duration::from_millis(60), "{rtt:?}");
        assert!(rtt < Duration::from_millis(400), "{rtt:?}");

        relay.cut([client.local_addr().expect("addr")]);
        assert!(echo(&client, relay.addr(), &mut buf).await.is_none());
        relay.heal();
        assert!(echo(&client, relay.addr(), &mut buf).await.is_some());

        relay.set_conditions(PathConditions {
            loss: 1.0,
            ..PathConditions::default()
        });
        assert!(echo(&client, relay.addr(), &mut buf).await.is_none());
    }

    /// Datagrams keep their order both ways, jitter or not: a burst of numbered datagrams comes
    /// back through the relay, from an echoing server, in the order it was sent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keeps_each_paths_order() {
        const COUNT: u32 = 2_000;
        let relay = echo_server_behind_relay(PathConditions::from_rtt(
            Duration::from_millis(10),
            Duration::from_millis(3),
            0.0,
        ))
        .await;
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let receiver = async {
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            while got.len() < COUNT as usize {
                match tokio::time::timeout(Duration::from_secs(1), client.recv(&mut buf)).await {
                    Ok(Ok(4)) => got.push(u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]])),
                    _ => break,
                }
            }
            got
        };
        let sender = async {
            for i in 0..COUNT {
                client
                    .send_to(&i.to_le_bytes(), relay.addr())
                    .await
                    .expect("send");
                // Paced, so that the sockets' buffers on a loaded machine do not drop most of
                // the burst.
                if i % 32 == 31 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        };
        let (got, ()) = tokio::join!(receiver, sender);
        let out_of_order = got.windows(2).filter(|w| w[1] < w[0]).count();
        assert_eq!(out_of_order, 0, "{out_of_order} datagrams overtaken");
        // Loopback may drop some of a burst on a loaded machine; enough must come back for
        // their order to say something (the old relay overtook 110-298 of 2,000).
        assert!(got.len() >= COUNT as usize / 4, "{} came back", got.len());
    }
}
