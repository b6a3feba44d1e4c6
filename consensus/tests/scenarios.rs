//! Deterministic multi-replica scenarios on the simulator (no random faults).

mod common;

use common::{ByzProfile, Sim, SimOptions, CLOCK_BASE_MS, FUTURE_MS};
use shoji_consensus::{verify_commit_certificate, Error};

fn all(n: usize) -> Vec<usize> {
    (0..n).collect()
}

/// Submits `count` requests, `gap_ms` apart, to `targets`.
fn submit_spaced(sim: &mut Sim, count: usize, gap_ms: u64, targets: &[usize]) -> Vec<usize> {
    let mut reqs = Vec::new();
    for _ in 0..count {
        reqs.push(sim.submit(targets.to_vec()));
        let t = sim.now + gap_ms;
        sim.run_until(t, |_| false).expect("run");
        sim.now = t;
    }
    reqs
}

fn assert_same_chains(sim: &Sim, nodes: &[usize]) {
    let first = &sim.nodes[nodes[0]].chain;
    for &i in nodes {
        let c = &sim.nodes[i].chain;
        assert_eq!(
            c.len(),
            first.len(),
            "replica {i} has a different chain length"
        );
        for ((a, _), (b, _)) in c.iter().zip(first) {
            assert_eq!(
                a.hash(),
                b.hash(),
                "replica {i} diverged at height {}",
                a.height
            );
        }
    }
}

#[test]
fn happy_path_four_replicas() {
    let mut sim = Sim::new(SimOptions::calm(4, 7));
    let reqs = submit_spaced(&mut sim, 10, 5, &all(4));
    sim.run_until(10_000, |s| reqs.iter().all(|r| s.commit_count(*r) == 4))
        .expect("run");
    for r in &reqs {
        assert_eq!(
            sim.commit_count(*r),
            4,
            "request {r} not committed everywhere"
        );
    }
    assert_same_chains(&sim, &all(4));
    for node in &sim.nodes {
        let replica = node.replica.as_ref().expect("up");
        assert_eq!(replica.view(), 0, "no view change expected");
        for (block, cert) in &node.chain {
            verify_commit_certificate(sim.validators(), block, cert).expect("certificate");
        }
    }
}

#[test]
fn happy_path_seven_replicas_single_target() {
    let mut sim = Sim::new(SimOptions::calm(7, 8));
    // Requests go to one backup each and are forwarded to the leader.
    let mut reqs = Vec::new();
    for k in 0..6 {
        reqs.extend(submit_spaced(&mut sim, 1, 5, &[1 + k % 6]));
    }
    sim.run_until(10_000, |s| reqs.iter().all(|r| s.commit_count(*r) == 7))
        .expect("run");
    for r in &reqs {
        assert_eq!(sim.commit_count(*r), 7);
    }
    assert_same_chains(&sim, &all(7));
}

#[test]
fn view_change_when_leader_is_silent() {
    let mut opts = SimOptions::calm(4, 9);
    opts.byzantine = vec![(
        0,
        ByzProfile {
            silent: true,
            ..ByzProfile::default()
        },
    )];
    let mut sim = Sim::new(opts);
    let reqs = submit_spaced(&mut sim, 4, 5, &all(4));
    sim.run_until(20_000, |s| reqs.iter().all(|r| s.commit_count(*r) == 3))
        .expect("run");
    for r in &reqs {
        assert_eq!(
            sim.commit_count(*r),
            3,
            "request {r} not committed by the honest replicas"
        );
    }
    for i in 1..4 {
        let replica = sim.nodes[i].replica.as_ref().expect("up");
        assert!(replica.view() >= 1, "replica {i} never left view 0");
        assert!(!replica.is_view_changing());
    }
    assert_same_chains(&sim, &[1, 2, 3]);
}

#[test]
fn checkpoints_become_stable_and_log_is_collected() {
    let mut sim = Sim::new(SimOptions::calm(4, 10));
    let reqs = submit_spaced(&mut sim, 40, 20, &all(4));
    sim.run_until(30_000, |s| reqs.iter().all(|r| s.commit_count(*r) == 4))
        .expect("run");
    // Let the last checkpoint messages settle.
    let t = sim.now + 1_000;
    sim.run_until(t, |_| false).expect("run");
    for (i, node) in sim.nodes.iter().enumerate() {
        let replica = node.replica.as_ref().expect("up");
        let stable = replica.stable_checkpoint();
        let height = replica.last_committed().0;
        assert!(height >= 10, "replica {i} committed only {height} blocks");
        assert!(
            stable.height + replica.config().checkpoint_interval > height,
            "replica {i}: stable checkpoint {} lags height {height}",
            stable.height
        );
        assert!(
            replica.log_len() as u64 <= replica.config().window_size,
            "replica {i} keeps {} slots",
            replica.log_len()
        );
        let ps = &node.persisted;
        assert_eq!(ps.stable_checkpoint.height, stable.height);
        assert!(ps.pre_prepares.keys().all(|h| *h > stable.height));
        assert!(ps.prepares.keys().all(|h| *h > stable.height));
        assert!(ps.commits.keys().all(|h| *h > stable.height));
        assert!(ps.checkpoints.keys().all(|h| *h > stable.height));
        stable
            .verify(
                sim.validators(),
                &shoji_consensus::CheckpointCertificate::genesis(),
            )
            .expect("checkpoint certificate");
    }
}

#[test]
fn restarted_replica_catches_up_by_state_transfer() {
    let mut sim = Sim::new(SimOptions::calm(4, 11));
    sim.schedule_crash(0, 3);
    let first = submit_spaced(&mut sim, 30, 20, &[0, 1, 2]);
    sim.run_until(sim.now + 2_000, |_| false).expect("run");
    assert!(sim.nodes[3].replica.is_none());
    assert!(sim.nodes[3].chain.is_empty());
    let at = sim.now + 1;
    sim.schedule_restart(at, 3);
    let second = submit_spaced(&mut sim, 12, 20, &all(4));
    let reqs: Vec<usize> = first.iter().chain(&second).copied().collect();
    sim.run_until(60_000, |s| reqs.iter().all(|r| s.commit_count(*r) == 4))
        .expect("run");
    for r in &reqs {
        assert_eq!(sim.commit_count(*r), 4, "request {r} not committed by all");
    }
    assert!(
        sim.transfers.get(&3).copied().unwrap_or(0) > 0,
        "replica 3 should have used state transfer"
    );
    assert_same_chains(&sim, &all(4));
}

#[test]
fn crash_and_restart_of_leader_keeps_committed_blocks() {
    let mut sim = Sim::new(SimOptions::calm(4, 12));
    let first = submit_spaced(&mut sim, 6, 20, &all(4));
    sim.run_until(sim.now + 500, |_| false).expect("run");
    let before = sim.nodes[0].chain.len();
    assert!(before > 0);
    let t = sim.now + 1;
    sim.schedule_crash(t, 0);
    sim.schedule_restart(t + 300, 0);
    let second = submit_spaced(&mut sim, 6, 100, &all(4));
    let reqs: Vec<usize> = first.iter().chain(&second).copied().collect();
    sim.run_until(60_000, |s| reqs.iter().all(|r| s.commit_count(*r) == 4))
        .expect("run");
    for r in &reqs {
        assert_eq!(sim.commit_count(*r), 4);
    }
    assert!(sim.nodes[0].chain.len() >= before);
    assert_same_chains(&sim, &all(4));
}

#[test]
fn block_times_follow_the_leaders_clock() {
    let mut sim = Sim::new(SimOptions::calm(4, 13));
    let start = sim.clock_ms();
    let reqs = submit_spaced(&mut sim, 12, 50, &all(4));
    // Until every request is committed everywhere and the idle leader has closed the
    // checkpoint (empty blocks up to a checkpoint height) on every replica.
    let k = common::sim_config(sim.validators.clone()).checkpoint_interval as usize;
    sim.run_until(10_000, |s| {
        reqs.iter().all(|r| s.commit_count(*r) == 4)
            && s.nodes
                .iter()
                .all(|n| n.chain.len() == s.nodes[0].chain.len() && n.chain.len().is_multiple_of(k))
    })
    .expect("run");
    assert_same_chains(&sim, &all(4));
    let chain = &sim.nodes[0].chain;
    assert!(chain.len() >= 2, "only {} blocks", chain.len());
    let times: Vec<u64> = chain.iter().map(|(b, _)| b.time_ms).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "times go backwards: {times:?}"
    );
    assert!(times[0] >= start, "{times:?}");
    assert!(*times.last().unwrap() <= sim.clock_ms(), "{times:?}");
    assert!(
        times.last() > times.first(),
        "requests 50 ms apart over several blocks: {times:?}"
    );
}

#[test]
fn leader_proposing_from_the_future_is_replaced() {
    let mut opts = SimOptions::calm(4, 14);
    opts.byzantine = vec![(
        0,
        ByzProfile {
            future_time: true,
            ..ByzProfile::default()
        },
    )];
    let mut sim = Sim::new(opts);
    let reqs = submit_spaced(&mut sim, 4, 5, &all(4));
    // The honest backups refuse the leader's pre-prepares and move to view 1.
    sim.run_until(20_000, |s| {
        (1..4).any(|i| s.nodes[i].replica.as_ref().is_some_and(|r| r.view() >= 1))
    })
    .expect("run");
    for i in 1..4 {
        let r = sim.nodes[i].replica.as_ref().expect("up");
        assert!(
            r.recent_errors()
                .any(|e| matches!(e, Error::FutureBlock { time_ms, .. } if *time_ms >= CLOCK_BASE_MS + FUTURE_MS)),
            "replica {i} did not refuse the leader's block"
        );
        assert!(
            sim.nodes[i].chain.is_empty(),
            "replica {i} committed in view 0"
        );
    }
    sim.run_until(40_000, |s| reqs.iter().all(|r| s.commit_count(*r) == 3))
        .expect("run");
    for r in &reqs {
        assert_eq!(sim.commit_count(*r), 3, "request {r} not committed");
    }
    assert_same_chains(&sim, &[1, 2, 3]);
    for i in 1..4 {
        assert!(sim.nodes[i].replica.as_ref().expect("up").view() >= 1);
        for (b, _) in &sim.nodes[i].chain {
            assert!(
                b.time_ms <= sim.clock_ms(),
                "replica {i} committed block {} from the future",
                b.height
            );
        }
    }
}

/// Clients check what they scan against a stable checkpoint's state root, so an idle chain must
/// not stop short of one: after a single request the leader proposes empty blocks up to the
/// next checkpoint height, and that checkpoint becomes stable everywhere.
#[test]
fn an_idle_chain_closes_its_checkpoint() {
    let mut sim = Sim::new(SimOptions::calm(4, 21));
    let reqs = submit_spaced(&mut sim, 1, 0, &all(4));
    let k = common::sim_config(sim.validators.clone()).checkpoint_interval;
    sim.run_until(10_000, |s| {
        reqs.iter().all(|r| s.commit_count(*r) == 4)
            && s.nodes.iter().all(|n| {
                n.replica
                    .as_ref()
                    .is_some_and(|r| r.stable_checkpoint().height == k)
            })
    })
    .expect("the checkpoint closes");
    assert_same_chains(&sim, &all(4));
    let chain = &sim.nodes[0].chain;
    assert_eq!(chain.len() as u64, k, "no block past the checkpoint");
    assert!(chain[1..].iter().all(|(b, _)| b.transactions.is_empty()));
}
