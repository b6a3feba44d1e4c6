//! End-to-end tests of the transport on loopback.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use shoji_net::{
    codes, ClientConnection, Error, Identity, NetConfig, ReasonLabel, Refusal, ValidatorEndpoint,
};
use tokio::time::{sleep, timeout, Instant};

fn config() -> NetConfig {
    NetConfig {
        keep_alive_interval: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(5),
        reconnect_initial: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(300),
        stream_timeout: Duration::from_secs(2),
        ..NetConfig::default()
    }
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn set_of(keys: &[SigningKey]) -> BTreeMap<u16, VerifyingKey> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| (i as u16, k.verifying_key()))
        .collect()
}

fn loopback_socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// `n` validators on loopback, each knowing every other's address.
fn cluster(n: u8) -> (Vec<SigningKey>, Vec<ValidatorEndpoint>) {
    let keys: Vec<SigningKey> = (0..n).map(|i| key(i + 1)).collect();
    let sockets: Vec<UdpSocket> = (0..n).map(|_| loopback_socket()).collect();
    let addrs: BTreeMap<u16, SocketAddr> = sockets
        .iter()
        .enumerate()
        .map(|(i, s)| (i as u16, s.local_addr().unwrap()))
        .collect();
    let endpoints = sockets
        .into_iter()
        .zip(&keys)
        .map(|(socket, k)| {
            ValidatorEndpoint::from_socket(
                Identity::new(k).unwrap(),
                socket,
                set_of(&keys),
                addrs.clone(),
                config(),
            )
            .unwrap()
        })
        .collect();
    (keys, endpoints)
}

/// How many connections, streams or requests `server` refused for `why` (its metric).
fn refusals(server: &ValidatorEndpoint, why: Refusal) -> u64 {
    server
        .metrics()
        .refused
        .get_or_create(&ReasonLabel { reason: why.name() })
        .get()
}

async fn recv_within(ep: &ValidatorEndpoint, limit: Duration) -> Option<(u16, Vec<u8>)> {
    timeout(limit, ep.recv()).await.ok().flatten()
}

/// Answers every client request with its bytes reversed.
fn spawn_reverser(ep: std::sync::Arc<ValidatorEndpoint>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(req) = ep.next_request().await {
            let mut body = req.body().to_vec();
            body.reverse();
            req.respond(body);
        }
    })
}

/// One validator with `config`, answering clients with their bytes reversed: its key, the
/// endpoint, its address and the responder (dropping that does not stop it; keep it in scope
/// for readability).
fn reversing_server(
    config: NetConfig,
) -> (
    SigningKey,
    std::sync::Arc<ValidatorEndpoint>,
    SocketAddr,
    tokio::task::JoinHandle<()>,
) {
    let k = key(1);
    let server = std::sync::Arc::new(
        ValidatorEndpoint::bind(
            Identity::new(&k).unwrap(),
            "127.0.0.1:0".parse().unwrap(),
            set_of(std::slice::from_ref(&k)),
            BTreeMap::new(),
            config,
        )
        .unwrap(),
    );
    let addr = server.local_addr().unwrap();
    let responder = spawn_reverser(server.clone());
    (k, server, addr, responder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_all_to_all() {
    let (_keys, eps) = cluster(4);
    for (i, ep) in eps.iter().enumerate() {
        assert_eq!(ep.id(), i as u16);
        for j in 0..4u16 {
            ep.send(j, vec![i as u8, j as u8, 0xAB]).unwrap();
        }
    }
    for (j, ep) in eps.iter().enumerate() {
        let mut senders = BTreeSet::new();
        for _ in 0..4 {
            let (from, msg) = recv_within(ep, Duration::from_secs(5))
                .await
                .expect("message not delivered");
            assert_eq!(msg, vec![from as u8, j as u8, 0xAB], "sender id mismatch");
            senders.insert(from);
        }
        assert_eq!(senders, (0..4).collect::<BTreeSet<u16>>());
    }
    for ep in eps {
        ep.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_messages_and_a_large_one() {
    let (_keys, eps) = cluster(2);
    let big = vec![0x5A; 3 << 20];
    eps[0].send(1, big.clone()).unwrap();
    for k in 0..200u32 {
        eps[0].send(1, k.to_le_bytes().to_vec()).unwrap();
    }
    let mut seen = BTreeSet::new();
    let mut got_big = false;
    while seen.len() < 200 || !got_big {
        let (from, msg) = recv_within(&eps[1], Duration::from_secs(5)).await.unwrap();
        assert_eq!(from, 0);
        if msg.len() == big.len() {
            assert_eq!(msg, big);
            got_big = true;
        } else {
            seen.insert(u32::from_le_bytes(msg.try_into().unwrap()));
        }
    }
    assert!(matches!(
        eps[0].send(1, vec![0; (4 << 20) + 1]),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        eps[0].send(9, vec![1]),
        Err(Error::UnknownPeer(9))
    ));
}

/// A validator-set change: a joiner is refused until the set holds it, then both ways work;
/// a member removed from the set is cut off and can no longer be sent to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validator_set_changes_admit_joiners_and_cut_off_leavers() {
    let (keys, eps) = cluster(2);
    let joiner = key(50);
    let j_socket = loopback_socket();
    let j_addr = j_socket.local_addr().unwrap();
    let mut next = set_of(&keys);
    next.insert(2, joiner.verifying_key());
    let mut addrs: BTreeMap<u16, SocketAddr> = eps
        .iter()
        .map(|e| (e.id(), e.local_addr().unwrap()))
        .collect();
    let j = ValidatorEndpoint::from_socket(
        Identity::new(&joiner).unwrap(),
        j_socket,
        next.clone(),
        addrs.clone(),
        config(),
    )
    .unwrap();
    assert_eq!(j.id(), 2);
    // Not a member for validator 0 yet: refused, and 0 cannot address it.
    j.send(0, b"early".to_vec()).unwrap();
    assert!(recv_within(&eps[0], Duration::from_millis(800))
        .await
        .is_none());
    assert!(matches!(
        eps[0].send(2, vec![1]),
        Err(Error::UnknownPeer(2))
    ));

    addrs.insert(2, j_addr);
    eps[0].set_validators(next.clone(), addrs.clone()).unwrap();
    // The joiner's link redials with backoff; the next message goes through.
    let deadline = Instant::now() + Duration::from_secs(5);
    let got = loop {
        j.send(0, b"joined".to_vec()).unwrap();
        match recv_within(&eps[0], Duration::from_millis(200)).await {
            Some(m) => break m,
            None if Instant::now() < deadline => continue,
            None => panic!("the joiner's messages never arrived"),
        }
    };
    assert_eq!(got.0, 2);
    eps[0].send(2, b"welcome".to_vec()).unwrap();
    let (from, msg) = recv_within(&j, Duration::from_secs(5)).await.unwrap();
    assert_eq!((from, msg.as_slice()), (0, &b"welcome"[..]));
    // Messages between 0 and 1 were not disturbed.
    eps[1].send(0, b"still here".to_vec()).unwrap();
    let (from, msg) = recv_within(&eps[0], Duration::from_secs(5)).await.unwrap();
    assert_eq!((from, msg.as_slice()), (1, &b"still here"[..]));

    // Validator 1 leaves the set at 0: 0 stops accepting it and cannot send to it.
    let mut without_1 = next.clone();
    without_1.remove(&1);
    eps[0].set_validators(without_1, addrs.clone()).unwrap();
    assert!(matches!(
        eps[0].send(1, vec![1]),
        Err(Error::UnknownPeer(1))
    ));
    for _ in 0..3 {
        eps[1].send(0, b"after removal".to_vec()).unwrap();
    }
    while let Some((from, msg)) = recv_within(&eps[0], Duration::from_millis(1500)).await {
        // A joiner "joined" message still in flight may arrive; nothing from 1 may.
        assert_ne!(from, 1, "{:?}", String::from_utf8_lossy(&msg));
    }
    // A duplicate key is refused and changes nothing.
    let mut dup = next.clone();
    dup.insert(3, joiner.verifying_key());
    assert!(matches!(
        eps[0].set_validators(dup, addrs),
        Err(Error::DuplicateKey(2, 3))
    ));
    eps[0].send(2, b"unchanged".to_vec()).unwrap();
    let (from, msg) = recv_within(&j, Duration::from_secs(5)).await.unwrap();
    assert_eq!((from, msg.as_slice()), (0, &b"unchanged"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validator_with_unknown_key_is_refused() {
    let (keys, eps) = cluster(2);
    let b_addr = eps[1].local_addr().unwrap();
    // An outsider that believes it is replica 2 and knows replica 1's real key and address.
    let outsider = key(99);
    let mut its_set = set_of(&keys);
    its_set.insert(2, outsider.verifying_key());
    let x = ValidatorEndpoint::bind(
        Identity::new(&outsider).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        its_set,
        BTreeMap::from([(1, b_addr)]),
        config(),
    )
    .unwrap();
    for _ in 0..5 {
        x.send(1, b"let me in".to_vec()).unwrap();
    }
    eps[0].send(1, b"legit".to_vec()).unwrap();
    let (from, msg) = recv_within(&eps[1], Duration::from_secs(5)).await.unwrap();
    assert_eq!((from, msg.as_slice()), (0, &b"legit"[..]));
    assert!(recv_within(&eps[1], Duration::from_millis(1500))
        .await
        .is_none());
}

#[test]
fn own_key_must_be_in_the_set() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let keys = [key(1), key(2)];
    let r = ValidatorEndpoint::from_socket(
        Identity::new(&key(3)).unwrap(),
        loopback_socket(),
        set_of(&keys),
        BTreeMap::new(),
        config(),
    );
    assert!(matches!(r, Err(Error::NotInValidatorSet)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_round_trip_and_wrong_server_key() {
    let (keys, eps) = cluster(2);
    let addr = eps[0].local_addr().unwrap();
    let server = std::sync::Arc::new(eps.into_iter().next().unwrap());
    let _responder = spawn_reverser(server.clone());

    let client = ClientConnection::connect_with(addr, &keys[0].verifying_key(), config())
        .await
        .unwrap();
    assert_eq!(client.request(b"abc").await.unwrap(), b"cba");
    assert_eq!(client.request(b"").await.unwrap(), b"");
    // Concurrent requests, each on its own stream.
    let client = std::sync::Arc::new(client);
    let tasks: Vec<_> = (0..16u8)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.request(&[i, 9]).await })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap().unwrap(), vec![9, i as u8]);
    }

    // Pinning another key (replica 1's) for the same address: the client refuses the server.
    let wrong = ClientConnection::connect_with(addr, &keys[1].verifying_key(), config()).await;
    assert!(matches!(wrong, Err(Error::Connection(_))), "{wrong:?}");
    drop(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_only_their_stream() {
    let (keys, eps) = cluster(1);
    let addr = eps[0].local_addr().unwrap();
    let server = std::sync::Arc::new(eps.into_iter().next().unwrap());
    let _responder = spawn_reverser(server.clone());
    let client = ClientConnection::connect_with(addr, &keys[0].verifying_key(), config())
        .await
        .unwrap();
    let conn = client.connection();

    // Oversized: announces 2 GiB, sends a few bytes and keeps the stream open.
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&[0, 0, 0, 0x80, 1, 2, 3]).await.unwrap();
    let err = timeout(Duration::from_secs(3), recv.read_to_end(1024))
        .await
        .expect("server did not close the oversized stream")
        .unwrap_err();
    assert_eq!(reset_code(err), Some(codes::FRAME_TOO_LARGE));
    let stopped = timeout(Duration::from_secs(3), send.stopped())
        .await
        .unwrap();
    assert_eq!(
        stopped.unwrap(),
        Some(quinn::VarInt::from_u32(codes::FRAME_TOO_LARGE))
    );

    // Truncated: announces 10 bytes, sends 3, finishes.
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&[10, 0, 0, 0, 1, 2, 3]).await.unwrap();
    send.finish().unwrap();
    let err = timeout(Duration::from_secs(3), recv.read_to_end(1024))
        .await
        .expect("server did not close the truncated stream")
        .unwrap_err();
    assert_eq!(reset_code(err), Some(codes::MALFORMED_FRAME));

    // Same connection and endpoint keep serving.
    assert_eq!(client.request(b"still here").await.unwrap(), b"ereh llits");
    let fresh = ClientConnection::connect_with(addr, &keys[0].verifying_key(), config())
        .await
        .unwrap();
    assert_eq!(fresh.request(b"ok").await.unwrap(), b"ko");
}

/// A client request is at most `max_request_size` (64 KiB), far below the 4 MiB frames
/// validators exchange: a larger one is refused on its stream, and the connection serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_request_above_the_request_limit_is_refused() {
    let (k, server, addr, _responder) = reversing_server(config());
    let refused = |why: Refusal| refusals(&server, why);
    let client = ClientConnection::connect_with(addr, &k.verifying_key(), config())
        .await
        .unwrap();
    let limit = NetConfig::default().max_request_size;
    let at_limit = vec![7u8; limit];
    assert_eq!(client.request(&at_limit).await.unwrap(), at_limit);
    let big = vec![7u8; 1 << 20];
    assert!(
        client.request(&big).await.is_err(),
        "a 1 MiB request was served"
    );
    assert_eq!(client.request(b"small").await.unwrap(), b"llams");
    // Counted for the operator, under its reason; the client connection is being served.
    assert_eq!(refused(Refusal::BadRequestFrame), 1);
    assert_eq!(refused(Refusal::RateLimited), 0);
    assert_eq!(server.metrics().clients_connected.get(), 1);
    drop(client);
}

/// A connection that starts requests faster than `client_requests_per_second` (here 20, with
/// a burst of 40) has the excess refused before the application sees it; another connection
/// is served as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_past_its_request_rate_is_refused_and_others_are_served() {
    let (k, server, addr, _responder) = reversing_server(NetConfig {
        client_requests_per_second: 20,
        ..config()
    });
    let pinned = k.verifying_key();
    let greedy = std::sync::Arc::new(
        ClientConnection::connect_with(addr, &pinned, config())
            .await
            .unwrap(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200u32 {
        let c = greedy.clone();
        tasks.spawn(async move { c.request(&i.to_le_bytes()).await.is_ok() });
    }
    let mut served = 0;
    while let Some(ok) = tasks.join_next().await {
        served += usize::from(ok.unwrap());
    }
    assert!(served >= 40, "the burst is served ({served})");
    assert!(served < 200, "all 200 requests were served at once");
    let counted = refusals(&server, Refusal::RateLimited);
    assert_eq!(counted as usize, 200 - served, "each refusal is counted");
    let other = ClientConnection::connect_with(addr, &pinned, config())
        .await
        .unwrap();
    assert_eq!(other.request(b"ab").await.unwrap(), b"ba");
}

fn reset_code(e: quinn::ReadToEndError) -> Option<u32> {
    match e {
        quinn::ReadToEndError::Read(quinn::ReadError::Reset(code)) => {
            u32::try_from(code.into_inner()).ok()
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_restart() {
    let (keys, mut eps) = cluster(2);
    let b_addr = eps[1].local_addr().unwrap();
    let a_addr = eps[0].local_addr().unwrap();
    eps[0].send(1, b"before".to_vec()).unwrap();
    assert_eq!(
        recv_within(&eps[1], Duration::from_secs(5)).await.unwrap(),
        (0, b"before".to_vec())
    );

    let b = eps.pop().unwrap();
    b.shutdown().await;
    // Messages sent while B is down are queued and delivered after it comes back.
    eps[0].send(1, b"while down".to_vec()).unwrap();
    sleep(Duration::from_millis(300)).await;

    let deadline = Instant::now() + Duration::from_secs(3);
    let b = loop {
        match ValidatorEndpoint::bind(
            Identity::new(&keys[1]).unwrap(),
            b_addr,
            set_of(&keys),
            BTreeMap::from([(0, a_addr)]),
            config(),
        ) {
            Ok(b) => break b,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("rebind failed: {e}"),
        }
    };
    let (from, msg) = recv_within(&b, Duration::from_secs(8))
        .await
        .expect("no message after restart");
    assert_eq!((from, msg.as_slice()), (0, &b"while down"[..]));
    eps[0].send(1, b"after".to_vec()).unwrap();
    assert_eq!(
        recv_within(&b, Duration::from_secs(5)).await.unwrap(),
        (0, b"after".to_vec())
    );
    b.send(0, b"back".to_vec()).unwrap();
    assert_eq!(
        recv_within(&eps[0], Duration::from_secs(5)).await.unwrap(),
        (1, b"back".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_refuses_extra_connections() {
    let (k, _server, addr, _responder) = reversing_server(NetConfig {
        max_connections: 1,
        ..config()
    });
    let pinned = k.verifying_key();
    let first = ClientConnection::connect_with(addr, &pinned, config())
        .await
        .unwrap();
    assert_eq!(first.request(b"12").await.unwrap(), b"21");
    // Past the client budget a connection is closed after its handshake: connecting or the
    // first request fails.
    let second = match ClientConnection::connect_with(addr, &pinned, config()).await {
        Ok(c) => c.request(b"34").await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(second.is_err(), "a client past the limit was served");
    first.close().await;
    // The slot is released once the first connection is gone.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match ClientConnection::connect_with(addr, &pinned, config()).await {
            Ok(third) => {
                assert_eq!(third.request(b"ab").await.unwrap(), b"ba");
                break;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("slot not released: {e}"),
        }
    }
}

/// Clients and validators have separate connection budgets: clients holding every client slot
/// of a validator do not keep another validator from connecting to it (as one restarted
/// during such a flood must). Before, one budget served both, and the validator was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_holding_every_slot_do_not_lock_out_a_validator() {
    let keys = vec![key(1), key(2)];
    let sockets = [loopback_socket(), loopback_socket()];
    let addrs: BTreeMap<u16, SocketAddr> = sockets
        .iter()
        .enumerate()
        .map(|(i, s)| (i as u16, s.local_addr().unwrap()))
        .collect();
    let [s0, s1] = sockets;
    let limited = NetConfig {
        max_connections: 2,
        ..config()
    };
    let v0 = ValidatorEndpoint::from_socket(
        Identity::new(&keys[0]).unwrap(),
        s0,
        set_of(&keys),
        addrs.clone(),
        limited,
    )
    .unwrap();
    let server = std::sync::Arc::new(v0);
    let _responder = spawn_reverser(server.clone());
    let pinned = keys[0].verifying_key();
    let mut held = Vec::new();
    for _ in 0..2 {
        let c = ClientConnection::connect_with(addrs[&0], &pinned, config())
            .await
            .unwrap();
        assert_eq!(c.request(b"ab").await.unwrap(), b"ba");
        held.push(c);
    }
    // Validator 1 starts now, while the clients hold every slot, and reaches validator 0.
    let v1 = ValidatorEndpoint::from_socket(
        Identity::new(&keys[1]).unwrap(),
        s1,
        set_of(&keys),
        addrs,
        config(),
    )
    .unwrap();
    v1.send(0, b"hello".to_vec()).unwrap();
    let got = recv_within(&server, Duration::from_secs(5)).await;
    assert_eq!(
        got,
        Some((1, b"hello".to_vec())),
        "validator 1 was locked out"
    );
    drop(held);
}

#[test]
fn inconsistent_config_is_rejected() {
    let bad = NetConfig {
        keep_alive_interval: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        ..NetConfig::default()
    };
    assert!(matches!(bad.validate(), Err(Error::InvalidConfig(_))));
    assert!(NetConfig::default().validate().is_ok());
    assert!(config().validate().is_ok());
}

/// A submission is answered when its block commits, which can take longer than one frame's
/// time: the server waits `answer_timeout` for the application, not `stream_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_within_the_answer_timeout_arrives() {
    let (keys, eps) = cluster(1);
    let addr = eps[0].local_addr().unwrap();
    let server = std::sync::Arc::new(eps.into_iter().next().unwrap());
    let slow = server.clone();
    let _responder = tokio::spawn(async move {
        while let Some(req) = slow.next_request().await {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let body = req.body().to_vec();
            req.respond(body);
        }
    });
    let patient = NetConfig {
        stream_timeout: Duration::from_secs(10),
        ..config()
    };
    let client = ClientConnection::connect_with(addr, &keys[0].verifying_key(), patient)
        .await
        .unwrap();
    // The server's stream_timeout is 2 s; the answer comes after 3.
    assert_eq!(client.request(b"late").await.unwrap(), b"late");
}

/// Forwards to `server` the first datagram of every QUIC connection attempt that reaches
/// `listen` (a long-header Initial whose destination connection id is new), from the `sources`
/// sockets in turn, and nothing else; nobody reads what the server answers. Every attempt is a
/// handshake the server starts and nobody finishes, from one of many addresses, as a flood of
/// forged or abandoned Initials is.
async fn half_open_relay(
    listen: tokio::net::UdpSocket,
    server: SocketAddr,
    sources: Vec<tokio::net::UdpSocket>,
) {
    let mut seen = std::collections::HashSet::new();
    let mut buf = vec![0u8; 4096];
    let mut k = 0usize;
    while let Ok((n, _)) = listen.recv_from(&mut buf).await {
        let d = &buf[..n];
        // Long header, type Initial (QUIC v1), then version (4 bytes), DCID length, DCID.
        if n < 6 || d[0] & 0x80 == 0 || d[0] & 0x30 != 0 {
            continue;
        }
        let len = d[5] as usize;
        if n < 6 + len || !seen.insert(d[6..6 + len].to_vec()) {
            continue;
        }
        let _ = sources[k % sources.len()].send_to(d, server).await;
        k += 1;
    }
}

/// Issue 13, part 3: 400 half-open handshakes a second, from 32 addresses (127.0.0.2 to
/// 127.0.0.33, through [`half_open_relay`]), against a validator whose handshake budget is 256
/// with a 3 s timeout. Before, each held a handshake slot for the whole timeout: the budget
/// stayed full and most honest sessions were refused. Now, once half the budget is in use, an
/// address must answer a QUIC Retry before its handshake starts (the flood never does), and
/// one address may hold at most 32 handshakes. At least 99 % of the honest sessions started
/// meanwhile (connect, one request) are served, and a validator restarted during the flood
/// reconnects to the flooded one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_half_open_handshakes_does_not_lock_out_clients_or_validators() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let (keys, mut eps) = cluster(2);
    let addrs: Vec<SocketAddr> = eps.iter().map(|e| e.local_addr().unwrap()).collect();
    let survivor = eps.pop().unwrap();
    let server = Arc::new(eps.pop().unwrap());
    let _responder = spawn_reverser(server.clone());
    let pinned = keys[0].verifying_key();

    let listen = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let relay = listen.local_addr().unwrap();
    let mut sources = Vec::new();
    for i in 2..34u8 {
        let ip = std::net::Ipv4Addr::new(127, 0, 0, i);
        sources.push(tokio::net::UdpSocket::bind((ip, 0)).await.unwrap());
    }
    tokio::spawn(half_open_relay(listen, addrs[0], sources));
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let abandon = NetConfig {
                stream_timeout: Duration::from_secs(1),
                ..config()
            };
            let mut tick = tokio::time::interval(Duration::from_micros(2_500));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let abandon = abandon.clone();
                tokio::spawn(async move {
                    let _ = ClientConnection::connect_with(relay, &pinned, abandon).await;
                });
            }
        })
    };
    // Let the flood fill what it can.
    sleep(Duration::from_secs(3)).await;

    let (tried, served) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // An honest session allows its handshake 5 s, as `shoji-client` does: on two cores shared
    // with the flood and other tests, 2 s was sometimes too short (a handshake timed out in
    // about one run in three of the whole suite; none was refused).
    let honest_config = || NetConfig {
        stream_timeout: Duration::from_secs(5),
        ..config()
    };
    let mut honest = tokio::task::JoinSet::new();
    let target = addrs[0];
    for _ in 0..8 {
        let (tried, served) = (tried.clone(), served.clone());
        honest.spawn(async move {
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                tried.fetch_add(1, Ordering::Relaxed);
                if let Ok(c) =
                    ClientConnection::connect_with(target, &pinned, honest_config()).await
                {
                    if c.request(b"ok").await.ok().as_deref() == Some(&b"ko"[..]) {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    c.close().await;
                }
            }
        });
    }
    // Meanwhile validator 1 restarts and must reach the flooded validator again.
    survivor.shutdown().await;
    sleep(Duration::from_millis(200)).await;
    let restarted = ValidatorEndpoint::bind(
        Identity::new(&keys[1]).unwrap(),
        addrs[1],
        set_of(&keys),
        BTreeMap::from([(0, addrs[0])]),
        config(),
    )
    .unwrap();
    restarted.send(0, b"back".to_vec()).unwrap();
    let got = recv_within(&server, Duration::from_secs(5)).await;
    while honest.join_next().await.is_some() {}
    stop.store(true, Ordering::Relaxed);
    flood.await.unwrap();

    let (tried, served) = (
        tried.load(Ordering::Relaxed),
        served.load(Ordering::Relaxed),
    );
    eprintln!("{served} of {tried} honest sessions served under the flood");
    assert!(tried >= 100, "only {tried} honest sessions were tried");
    assert!(
        served * 100 >= tried * 99,
        "{served} of {tried} honest sessions served under the flood"
    );
    assert_eq!(
        got,
        Some((1, b"back".to_vec())),
        "the restarted validator did not reach the flooded one"
    );
}

/// One address may hold at most `max_connections_per_source` client connections, however
/// large the whole budget: the next one from it is closed after its handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_client_slot() {
    let (k, _server, addr, _responder) = reversing_server(NetConfig {
        max_connections: 64,
        max_connections_per_source: 2,
        ..config()
    });
    let pinned = k.verifying_key();
    let mut held = Vec::new();
    for _ in 0..2 {
        let c = ClientConnection::connect_with(addr, &pinned, config())
            .await
            .unwrap();
        assert_eq!(c.request(b"12").await.unwrap(), b"21");
        held.push(c);
    }
    let third = match ClientConnection::connect_with(addr, &pinned, config()).await {
        Ok(c) => c.request(b"34").await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(
        third.is_err(),
        "a third connection from one address was served"
    );
    held.pop().unwrap().close().await;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let next = match ClientConnection::connect_with(addr, &pinned, config()).await {
            Ok(c) => c.request(b"ab").await,
            Err(e) => Err(e),
        };
        match next {
            Ok(answer) => {
                assert_eq!(answer, b"ba");
                break;
            }
            Err(_) if Instant::now() < deadline => sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("the address's slot was not given back: {e}"),
        }
    }
}

/// A validator at its handshake limit refuses the handshakes past it; a client refused so tries
/// again after a pause instead of failing. Here one handshake at a time from an address, and 24
/// clients on that address connecting at once: every one is served, and the validator did
/// refuse some. Before, each refused client failed ("the server refused to accept a new
/// connection"), as 256 benchmark clients connecting together sometimes did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_refused_at_the_handshake_limit_try_again_and_are_served() {
    let (k, server, addr, _responder) = reversing_server(NetConfig {
        max_handshakes_per_source: 1,
        ..config()
    });
    let pinned = k.verifying_key();
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..24u8 {
        clients.spawn(async move {
            let c = ClientConnection::connect_with(addr, &pinned, config()).await?;
            let answer = c.request(&[i, 1]).await?;
            c.close().await;
            Ok::<_, Error>(answer == [1, i])
        });
    }
    let mut served = 0;
    while let Some(r) = clients.join_next().await {
        match r.expect("client task") {
            Ok(true) => served += 1,
            Ok(false) => panic!("a wrong answer"),
            Err(e) => panic!("a client failed: {e}"),
        }
    }
    assert_eq!(served, 24);
    let refusals = server
        .metrics()
        .refused
        .get_or_create(&ReasonLabel {
            reason: Refusal::HandshakesPerSource.name(),
        })
        .get();
    assert!(
        refusals > 0,
        "no handshake was refused: the test shows nothing"
    );
}
