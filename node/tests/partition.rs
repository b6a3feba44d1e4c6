//! Four validators, each behind a delaying relay (`shoji_net::relay`: 20 ms round trip, 2 ms
//! jitter, 1 % of datagrams lost), for validators and clients alike. They commit; split two
//! against two, neither side has a quorum and nothing commits, a payment submitted meanwhile
//! waits; healed, that payment commits, the chain goes on, and all four agree on the height and
//! the state root. A client beside its validator reaches it without the relay's delay.

mod common;

use common::{runtime, Fixture, Minter};
use shoji_client::{Client, Network};
use shoji_net::relay::PathConditions;
use shoji_node::devnet::{DevnetOptions, Placement};
use std::time::{Duration, Instant};

fn status(network: &Network, id: u16) -> Option<shoji_client::api::Status> {
    Client::connect(network, Some(id)).ok()?.status().ok()
}

#[test]
fn a_partition_two_against_two_commits_nothing_and_the_healed_network_goes_on() {
    let fixture = Fixture::with_accounts();
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DevnetOptions {
        ordering_only: false,
        placement: Placement::Tasks,
        archive: false,
        path: Some(PathConditions::from_rtt(
            Duration::from_millis(20),
            Duration::from_millis(2),
            0.01,
        )),
    };
    let net = {
        let _guard = runtime.enter();
        shoji_node::devnet::start_with_options(
            4,
            fixture.ledger.clone(),
            fixture.verifier.clone(),
            dir.path(),
            &options,
        )
        .expect("devnet")
    };
    let network = net.client_network(fixture.auditor.public_key(), fixture.ledger.issuers.clone());
    let client = Client::connect(&network, Some(0)).expect("connect");
    let mut minter = Minter::open(&client, &fixture.issuer, 1);
    let mut height = 0;
    for _ in 0..3 {
        height = minter.mint();
    }

    assert!(net.partition(&[&[0, 1], &[2, 3]]));
    // Whatever was under way settles (an idle chain runs on to its checkpoint); then nothing.
    std::thread::sleep(Duration::from_secs(2));
    let tops = |network: &Network| -> Vec<u64> {
        (0..4)
            .map(|i| status(network, i).map_or(0, |s| s.height))
            .collect()
    };
    let before = tops(&network);
    let (during, pending) = std::thread::scope(|s| {
        let pending = s.spawn(|| minter.try_mint());
        std::thread::sleep(Duration::from_secs(4));
        let during = tops(&network);
        assert!(net.heal());
        (during, pending.join().expect("the submitting thread"))
    });
    assert_eq!(before, during, "a side without a quorum committed");
    assert!(
        before.iter().all(|h| *h >= height),
        "{before:?} below {height}"
    );
    // Healed: the payment submitted during the partition commits (or, if its validator gave up
    // on it, the next one does), and the chain goes on.
    let resumed = match pending {
        Ok(h) => h,
        Err(e) => {
            eprintln!("the payment submitted during the partition: {e}; submitting another");
            minter.mint()
        }
    };
    assert!(resumed > *during.iter().max().expect("four"));
    let last = minter.mint();
    let start = Instant::now();
    loop {
        let all: Vec<_> = (0..4).filter_map(|i| status(&network, i)).collect();
        if all.len() == 4
            && all
                .iter()
                .all(|s| s.height >= last && s.height == all[0].height)
            && all.iter().all(|s| s.state_root == all[0].state_root)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the validators did not agree after healing"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A client beside its validator (`LocalNetwork::direct_addrs`, `--clients-local`) skips the
    // relay: its fastest read is quicker than the relay's round trip allows (at least 16 ms
    // here), while the same read through the relay is not.
    let mut beside = network.clone();
    beside.addrs = net.direct_addrs();
    let fastest = |network: &Network| -> Duration {
        let client = Client::connect(network, Some(1)).expect("connect");
        (0..5)
            .map(|_| {
                let t = Instant::now();
                client.status().expect("status");
                t.elapsed()
            })
            .min()
            .expect("five reads")
    };
    let (through, direct) = (fastest(&network), fastest(&beside));
    assert!(
        through >= Duration::from_millis(16),
        "through the relay: {through:?}"
    );
    assert!(
        direct < through,
        "direct {direct:?}, through the relay {through:?}"
    );
}
