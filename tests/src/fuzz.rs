//! The bodies of the fuzz targets in `fuzz/` (run with `cargo fuzz run <target>`), kept here so
//! that every build compiles them and the test suite runs them over random and mutated inputs.
//!
//! Each takes arbitrary bytes, must never panic, and checks that whatever decodes re-encodes to
//! exactly the same bytes (one canonical encoding).

use shoji_primitives::audit::disclosure::Disclosure;
use shoji_primitives::keys::Address;
use shoji_primitives::tx::Transaction;

/// Transaction decoding.
pub fn transaction(data: &[u8]) {
    if let Ok(tx) = Transaction::from_bytes(data) {
        assert_eq!(
            tx.to_bytes(),
            data,
            "a decoded transaction re-encodes to the same bytes"
        );
        let _ = tx.check_shape();
        let _ = tx.bundle().proof.to_ark();
        if let Transaction::Shield { proof, .. } = &tx {
            let _ = shoji_confidential::withdraw::WithdrawProof::from_bytes(&proof.0);
            assert!(tx.withdraw_context().is_some());
        }
        // Its compact form (a shield's or unshield's carries the account key) round-trips.
        let compact = shoji_ledger::CompactTx::of(&tx);
        let block = shoji_ledger::CompactBlock {
            height: 1,
            time_ms: 0,
            txs: vec![compact],
            tree_root: tx.bundle().anchor,
            rejected: Vec::new(),
            accounts: Vec::new(),
        };
        assert_eq!(
            shoji_ledger::CompactBlock::from_bytes(&block.to_bytes()).as_ref(),
            Ok(&block)
        );
    }
}

/// Address parsing (text).
pub fn address(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(a) = s.parse::<Address>() {
            assert_eq!(a.to_string().parse::<Address>().ok(), Some(a));
        }
    }
}

/// Disclosure proof decoding, and an account disclosure file (JSON) checked against a block
/// holding no such transfer: refused, never a panic.
pub fn disclosure(data: &[u8]) {
    if let Ok(d) = Disclosure::from_bytes(data) {
        assert_eq!(d.to_bytes().as_slice(), data);
    }
    if let Ok(f) =
        serde_json::from_slice::<shoji_auditor::account_disclosure::AccountDisclosureFile>(data)
    {
        let empty = shoji_ledger::CompactBlock {
            height: f.height,
            time_ms: 0,
            txs: Vec::new(),
            tree_root: shoji_primitives::Fr::from(0u64),
            rejected: Vec::new(),
            accounts: Vec::new(),
        };
        assert!(f.check(&empty).is_err());
    }
}

/// Confidential-account decoding: the first byte picks the decoder (amount ciphertext and
/// transfer proof together, withdraw, open and disclosure proofs, a balance ciphertext, a public
/// key); whatever decodes re-encodes to the same bytes, and a decoded transfer is verified
/// against a fixed statement without panicking.
pub fn account_proofs(data: &[u8]) {
    use shoji_confidential::elgamal::AMOUNT_CIPHERTEXT_BYTES;
    use shoji_confidential::{disclose, open, transfer, withdraw};
    use shoji_confidential::{AmountCiphertext, Ciphertext, PublicKey, SecretKey};
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 if rest.len() >= AMOUNT_CIPHERTEXT_BYTES => {
            let (ct, proof) = rest.split_at(AMOUNT_CIPHERTEXT_BYTES);
            if let (Ok(ct), Ok(p)) = (
                AmountCiphertext::from_bytes(ct),
                transfer::TransferProof::from_bytes(proof),
            ) {
                assert_eq!(&ct.to_bytes()[..], &rest[..AMOUNT_CIPHERTEXT_BYTES]);
                assert_eq!(p.to_bytes(), proof);
                let keys: Vec<PublicKey> = (0u8..3)
                    .map(|i| SecretKey::account(&[i; 32]).public())
                    .collect();
                let spendable = Ciphertext::public(1 << 40);
                let st = transfer::Statement {
                    context: b"fuzz",
                    sender: &keys[0],
                    receiver: &keys[1],
                    auditor: &keys[2],
                    spendable: &spendable,
                };
                let _ = transfer::verify_one(&st, &ct, &p);
            }
        }
        1 => {
            if let Ok(p) = withdraw::WithdrawProof::from_bytes(rest) {
                assert_eq!(p.to_bytes(), rest);
            }
        }
        2 => {
            if let Ok(p) = open::OpenProof::from_bytes(rest) {
                assert_eq!(p.to_bytes(), rest);
            }
        }
        3 => {
            if let Ok(p) = disclose::DisclosureProof::from_bytes(rest) {
                assert_eq!(p.to_bytes(), rest);
            }
        }
        4 => {
            if let Ok(b) = <&[u8; 64]>::try_from(rest) {
                if let Ok(c) = Ciphertext::from_bytes(b) {
                    assert_eq!(&c.to_bytes(), b);
                }
            }
        }
        _ => {
            if let Ok(b) = <&[u8; 32]>::try_from(rest) {
                if let Ok(k) = PublicKey::from_bytes(b) {
                    assert_eq!(&k.to_bytes(), b);
                }
            }
        }
    }
}

/// Account transaction decoding (what a validator reads from any client), and the account
/// state a validator's store reads back.
pub fn account_transaction(data: &[u8]) {
    use shoji_primitives::account::AccountTx;
    if let Ok(tx) = AccountTx::from_bytes(data) {
        assert_eq!(
            tx.to_bytes(),
            data,
            "a decoded account transaction re-encodes"
        );
        let _ = shoji_verifier::accounts::verify_account_tx(&tx, &[0; 32]);
    }
    if let Ok(state) = shoji_ledger::AccountState::from_bytes(data) {
        assert_eq!(state.to_bytes(), data, "a decoded account state re-encodes");
    }
    if let Some(lattice) = shoji_ledger::AccountsLattice::from_bytes(data) {
        assert_eq!(
            lattice.to_bytes(),
            data,
            "a decoded accounts lattice re-encodes"
        );
    }
}

/// Governance transaction decoding.
pub fn governance(data: &[u8]) {
    use shoji_primitives::governance::{GovernanceRules, GovernanceTx};
    if let Ok(g) = GovernanceTx::from_bytes(data) {
        assert_eq!(
            g.to_bytes(),
            data,
            "a decoded governance transaction re-encodes"
        );
        let rules = GovernanceRules {
            admins: g.approvals.iter().map(|a| a.admin).collect(),
            threshold: 1,
        };
        let _ = g.check_approvals(&rules, &[0; 32]);
        if let Some(a) = g.approvals.first() {
            let _ = g.check_signed_by(&a.admin, &[0; 32]);
        }
    }
}

/// Client API decoding (what a validator reads from any client, and a client from a
/// validator), and the compact blocks inside answers.
pub fn client_api(data: &[u8]) {
    use shoji_client::api::{Request, Response};
    if let Ok(r) = Request::decode(data) {
        assert_eq!(Request::decode(&r.encode()), Ok(r));
    }
    if let Ok(r) = Response::decode(data) {
        assert_eq!(Response::decode(&r.encode()), Ok(r));
    }
    if let Ok(b) = shoji_ledger::CompactBlock::from_bytes(data) {
        assert_eq!(b.to_bytes(), data);
    }
    if let Ok(o) = shoji_ledger::StateOpening::from_bytes(data) {
        assert_eq!(o.to_bytes(), data);
    }
    // What a client decodes from a `Certified` answer.
    let _ = postcard::from_bytes::<shoji_consensus::CheckpointCertificate>(data);
}

/// Snapshot decoding: a manifest re-encodes to the same bytes; as a chunk of each kind, listed
/// by its own hash in a manifest, the bytes are refused or accepted without a panic, and an
/// assembled state that does not open to the certified root is refused.
pub fn snapshot(data: &[u8]) {
    use shoji_ledger::snapshot::{
        chunk_hash, ChunkInfo, ChunkKind, SnapshotAssembler, SnapshotManifest,
    };
    if let Ok(m) = SnapshotManifest::from_bytes(data) {
        assert_eq!(m.to_bytes(), data);
    }
    let opening = shoji_ledger::LedgerHead::genesis()
        .opening_with(&shoji_primitives::tree::Frontier::new().root());
    for kind in [ChunkKind::Head, ChunkKind::Nullifiers, ChunkKind::Accounts] {
        let info = ChunkInfo {
            kind,
            len: data.len() as u32,
            hash: chunk_hash(data),
        };
        let mut chunks = vec![info];
        if kind != ChunkKind::Head {
            chunks.insert(
                0,
                ChunkInfo {
                    kind: ChunkKind::Head,
                    len: 0,
                    hash: [0; 32],
                },
            );
        }
        let manifest = SnapshotManifest {
            opening,
            nullifiers: 0,
            accounts: 0,
            chunks,
        };
        let mut a = match SnapshotAssembler::new(manifest, &opening.root()) {
            Ok(a) => a,
            Err(e) => panic!("the manifest's own root is refused: {e}"),
        };
        let index = usize::from(kind != ChunkKind::Head);
        if a.accept(index, data).is_ok() && kind == ChunkKind::Head {
            let _ = a.finish();
        }
    }
}

/// Consensus message decoding.
pub fn consensus_message(data: &[u8]) {
    if let Ok(m) = shoji_consensus::SignedMessage::decode(data, 1 << 20) {
        let _ = m.encode();
    }
}

/// Peer-message envelope decoding (consensus messages, state-transfer requests and answers):
/// whatever decodes re-encodes to a message that decodes to the same value.
pub fn peer_message(data: &[u8]) {
    use shoji_node::wire::{self, PeerMessage};
    match wire::decode(data) {
        Ok(PeerMessage::Consensus(body)) => consensus_message(body),
        Ok(PeerMessage::TransferRequest { from_height }) => {
            assert_eq!(wire::transfer_request(from_height), data);
        }
        Ok(PeerMessage::TransferAnswer(answer)) => {
            let again = wire::transfer_answer(&answer);
            assert_eq!(
                wire::decode(&again),
                Ok(PeerMessage::TransferAnswer(answer))
            );
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::{RngCore, SeedableRng};

    /// Random bytes, and mutations (flips, truncations, extensions) of valid encodings.
    #[test]
    fn targets_survive_random_and_mutated_inputs() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let tx = shoji_primitives::encoding::hex_decode(
            "vector",
            include_str!("../../verifier/testdata/transfer-v3.hex").trim(),
        )
        .unwrap();
        transaction(&tx);
        let bridge: Vec<Vec<u8>> = [
            include_str!("../../verifier/testdata/shield-v3.hex"),
            include_str!("../../verifier/testdata/unshield-v3.hex"),
        ]
        .iter()
        .map(|h| shoji_primitives::encoding::hex_decode("vector", h.trim()).unwrap())
        .collect();
        for b in &bridge {
            transaction(b);
        }
        let addr = shoji_primitives::keys::SpendingKeys::from_seed(
            &shoji_primitives::keys::WalletSeed([4; 32]),
        )
        .address()
        .to_string();
        address(addr.as_bytes());
        let block = shoji_consensus::Block {
            height: 1,
            prev_hash: shoji_consensus::BlockHash([0; 32]),
            view: 0,
            proposer: shoji_consensus::ReplicaId(0),
            time_ms: 1,
            transactions: vec![tx.clone()],
        };
        let cert = shoji_consensus::CommitCertificate {
            view: 0,
            signatures: Vec::new(),
        };
        let answer = shoji_node::wire::transfer_answer(&shoji_node::wire::StateTransferAnswer {
            tip: 1,
            blocks: vec![(block, cert)],
            stable: None,
        });
        peer_message(&answer);
        let mut g = shoji_primitives::governance::GovernanceTx::new(
            3,
            shoji_primitives::governance::GovernanceAction::SetIssuer {
                issuer: [7; 32],
                assets: [shoji_primitives::note::AssetId(840)].into(),
            },
        );
        g.approve(&ed25519_dalek::SigningKey::from_bytes(&[1; 32]), &[0; 32]);
        let g = g.to_bytes();
        governance(&g);
        // A recovery action (escrowed recovery: points, a share, one signature).
        let point = |k: u64| {
            (curve25519_dalek::scalar::Scalar::from(k)
                * curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT)
                .compress()
                .to_bytes()
        };
        let mut share = [3u8; shoji_primitives::recovery::SEALED_SHARE_BYTES];
        share[..32].copy_from_slice(&point(9));
        let mut r = shoji_primitives::governance::GovernanceTx::new(
            4,
            shoji_primitives::governance::GovernanceAction::EscrowSeed {
                name: "Bank B".into(),
                escrow: shoji_primitives::recovery::Escrow {
                    agents: [1; 32],
                    commitments: vec![point(1), point(2)],
                    sealed_seed: [2; 48],
                    shares: vec![share; 3],
                },
            },
        );
        r.approve(&ed25519_dalek::SigningKey::from_bytes(&[2; 32]), &[0; 32]);
        let recovery = r.to_bytes();
        governance(&recovery);
        let api = shoji_client::api::Request::Submit { tx: g.clone() }.encode();
        client_api(&api);
        let opening = shoji_ledger::StateOpening {
            height: 8,
            time_ms: 1,
            tree_size: 2,
            tree_root: shoji_primitives::Fr::from(5u64),
            nullifier_chain: [1; 32],
            governance_chain: [2; 32],
            scan_chain: [3; 32],
            validators: [4; 32],
            recent_roots: [5; 32],
            policy: [6; 32],
            accounts: [7; 32],
        }
        .to_bytes();
        client_api(&opening);
        let (snapshot_manifest, snapshot_chunks) = {
            let mut head = shoji_ledger::LedgerHead::genesis();
            head.height = 8;
            let root = head.frontier.root();
            let mut chunks = Vec::new();
            let mut w =
                shoji_ledger::snapshot::SnapshotWriter::new(&head, &root, 1024, |_, b: &[u8]| {
                    chunks.push(b.to_vec());
                    Ok::<(), ()>(())
                })
                .unwrap();
            w.nullifier(&[1; 32]).unwrap();
            let account = shoji_ledger::AccountId::new(
                &shoji_confidential::SecretKey::account(&[3; 32]).public(),
                shoji_primitives::note::AssetId(1),
            );
            w.account(&account, &shoji_ledger::AccountState::new())
                .unwrap();
            (w.finish().unwrap().to_bytes(), chunks)
        };
        snapshot(&snapshot_manifest);
        for c in &snapshot_chunks {
            snapshot(c);
        }
        let certified = shoji_client::api::Response::Certified {
            checkpoint: postcard::to_allocvec(&shoji_consensus::CheckpointCertificate::genesis())
                .unwrap(),
            opening: opening.clone(),
        }
        .encode();
        client_api(&certified);
        let epoch = shoji_client::api::Response::EpochChange {
            checkpoint: postcard::to_allocvec(&shoji_consensus::CheckpointCertificate::genesis())
                .unwrap(),
            opening: opening.clone(),
            last: 24,
            validators: vec![(1, [5; 32])],
        }
        .encode();
        client_api(&epoch);
        client_api(&shoji_client::api::Request::EpochChange { height: 9 }.encode());
        let account_seed = {
            use shoji_confidential::{transfer, Ciphertext, SecretKey};
            let sender = SecretKey::account(&[0; 32]);
            let keys = [
                sender.public(),
                SecretKey::account(&[1; 32]).public(),
                SecretKey::account(&[2; 32]).public(),
            ];
            let spendable = Ciphertext::public(1 << 40);
            let st = transfer::Statement {
                context: b"fuzz",
                sender: &keys[0],
                receiver: &keys[1],
                auditor: &keys[2],
                spendable: &spendable,
            };
            let (ct, proof) = transfer::prove(&sender, &st, 1 << 40, 5, &mut rng).unwrap();
            let mut seed = vec![0u8];
            seed.extend_from_slice(&ct.to_bytes());
            seed.extend_from_slice(&proof.to_bytes());
            account_proofs(&seed);
            assert!(transfer::verify_one(&st, &ct, &proof).is_ok());
            seed
        };
        let account_tx = shoji_primitives::account::AccountTx::open(
            &[0; 32],
            &shoji_confidential::SecretKey::account(&[3; 32]),
            shoji_primitives::note::AssetId(1),
            &mut rng,
        )
        .to_bytes();
        account_transaction(&account_tx);
        let state = shoji_ledger::AccountState::new().to_bytes();
        account_transaction(&state);
        let mut lattice = shoji_ledger::AccountsLattice::new();
        lattice.insert(&[7; 40], &state);
        let lattice = lattice.to_bytes();
        account_transaction(&lattice);
        for round in 0..3000 {
            let mut buf = vec![0u8; (rng.next_u32() % 1400) as usize];
            rng.fill_bytes(&mut buf);
            transaction(&buf);
            address(&buf);
            disclosure(&buf);
            consensus_message(&buf);
            peer_message(&buf);
            governance(&buf);
            client_api(&buf);
            snapshot(&buf);
            for tag in 0..3u8 {
                let mut tagged = vec![tag];
                tagged.extend_from_slice(&buf[..buf.len().min(64)]);
                peer_message(&tagged);
            }
            for seed in [&tx[..], addr.as_bytes(), &bridge[0], &bridge[1]] {
                let mut m = seed.to_vec();
                let i = (rng.next_u32() as usize) % m.len();
                m[i] ^= 1 << (rng.next_u32() % 8);
                let cut = (rng.next_u32() as usize) % (m.len() + 1);
                transaction(&m);
                address(&m);
                transaction(&m[..cut]);
                address(&m[..cut]);
            }
            let account_disclosure = br#"{"format":"shoji-account-disclosure-v1","txid":"00","height":1,"auditor_account_key":"00","sender":"00","receiver":"00","asset":1,"amount":5,"proof":"00"}"#;
            let mut m = account_disclosure.to_vec();
            let i = (rng.next_u32() as usize) % m.len();
            m[i] = (rng.next_u32() % 128) as u8;
            disclosure(&m);
            disclosure(account_disclosure);
            for seed in [
                &snapshot_manifest,
                &snapshot_chunks[0],
                &snapshot_chunks[1],
                &snapshot_chunks[2],
            ] {
                let mut m = seed.clone();
                let i = (rng.next_u32() as usize) % m.len();
                m[i] ^= 1 << (rng.next_u32() % 8);
                snapshot(&m);
                snapshot(&m[..(rng.next_u32() as usize) % (m.len() + 1)]);
            }
            for seed in [&g, &recovery, &api, &opening, &certified] {
                let mut m = seed.clone();
                let i = (rng.next_u32() as usize) % m.len();
                m[i] ^= 1 << (rng.next_u32() % 8);
                governance(&m);
                client_api(&m);
                let cut = (rng.next_u32() as usize) % (m.len() + 1);
                governance(&m[..cut]);
                client_api(&m[..cut]);
            }
            let mut m = answer.clone();
            let i = (rng.next_u32() as usize) % m.len();
            m[i] ^= 1 << (rng.next_u32() % 8);
            peer_message(&m);
            peer_message(&m[..(rng.next_u32() as usize) % (m.len() + 1)]);
            account_proofs(&buf);
            // A mutated transfer is verified in full: a few hundred rounds are enough.
            if round % 10 == 0 {
                let mut m = account_seed.clone();
                let i = 1 + (rng.next_u32() as usize) % (m.len() - 1);
                m[i] ^= 1 << (rng.next_u32() % 8);
                account_proofs(&m);
                account_proofs(&m[..(rng.next_u32() as usize) % (m.len() + 1)]);
            }
            let mut tagged = account_seed[..(rng.next_u32() as usize) % 200].to_vec();
            if let Some(b) = tagged.first_mut() {
                *b = (rng.next_u32() % 6) as u8;
            }
            account_proofs(&tagged);
            account_transaction(&buf);
            for seed in [&account_tx, &state, &lattice] {
                let mut m = seed.clone();
                let i = (rng.next_u32() as usize) % m.len();
                m[i] ^= 1 << (rng.next_u32() % 8);
                account_transaction(&m);
                account_transaction(&m[..(rng.next_u32() as usize) % (m.len() + 1)]);
            }
        }
    }
}
