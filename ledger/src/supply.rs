//! Each asset's supply, from public values alone (docs/protocol/accounts.md, "One supply across
//! the tiers").
//!
//! Every amount that crosses a boundary is public: an issuer's mint or redemption (either tier),
//! a shield (account → notes) and an unshield (notes → account). Anyone holding the certified
//! compact blocks can therefore follow, per asset, what was issued, what was redeemed and how
//! much of the rest sits in each tier, without seeing one private amount. The value in the
//! note pool and in the accounts can each only be what entered it minus what left it, so a
//! tier whose total would go below zero is proof of counterfeiting there.

use crate::CompactBlock;
use shoji_primitives::account::AccountTx;
use shoji_primitives::note::AssetId;
use shoji_primitives::tx::TxKind;
use std::collections::BTreeMap;

/// One asset's public flows. Sums are `u128` (many `u64` amounts) and tier balances `i128`, so
/// a counterfeit shows as a negative number instead of wrapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AssetSupply {
    /// Issued by mints, both tiers.
    pub issued: u128,
    /// Returned to issuers by redemptions, both tiers.
    pub redeemed: u128,
    /// Value in shielded notes: note mints and shields in, note redemptions and unshields out.
    pub in_notes: i128,
    /// Value in confidential accounts: account mints and unshields in, account redemptions and
    /// shields out.
    pub in_accounts: i128,
    /// Moved from accounts into notes.
    pub shielded: u128,
    /// Moved from notes into accounts.
    pub unshielded: u128,
}

impl AssetSupply {
    /// What is outstanding: issued minus redeemed.
    pub fn outstanding(&self) -> i128 {
        self.issued as i128 - self.redeemed as i128
    }

    /// Whether the books balance: the two tiers hold what is outstanding and neither is
    /// negative.
    pub fn balances(&self) -> bool {
        self.in_notes >= 0
            && self.in_accounts >= 0
            && self.in_notes + self.in_accounts == self.outstanding()
    }
}

/// Every asset's supply, following compact blocks in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SupplyBook {
    assets: BTreeMap<AssetId, AssetSupply>,
}

impl SupplyBook {
    /// An empty book (genesis: nothing issued).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the public flows of one applied block.
    pub fn follow(&mut self, block: &CompactBlock) {
        for t in &block.txs {
            let s = self.assets.entry(t.asset).or_default();
            let (v_in, v_out) = (t.value_in.0 as u128, t.value_out.0 as u128);
            match t.kind {
                TxKind::Transfer => {}
                TxKind::Mint => s.issued += v_in,
                TxKind::Redeem => s.redeemed += v_out,
                TxKind::Shield => {
                    s.shielded += v_in;
                    s.in_accounts -= v_in as i128;
                }
                TxKind::Unshield => {
                    s.unshielded += v_out;
                    s.in_accounts += v_out as i128;
                }
            }
            s.in_notes += v_in as i128 - v_out as i128;
        }
        for a in &block.accounts {
            let s = self.assets.entry(a.asset()).or_default();
            match a {
                AccountTx::Mint(m) => {
                    s.issued += m.value.0 as u128;
                    s.in_accounts += m.value.0 as i128;
                }
                AccountTx::Redeem(r) => {
                    s.redeemed += r.header.value.0 as u128;
                    s.in_accounts -= r.header.value.0 as i128;
                }
                AccountTx::Open(_) | AccountTx::Transfer(_) => {}
            }
        }
        self.assets.retain(|_, s| *s != AssetSupply::default());
    }

    /// One asset's supply (all zero if it never moved).
    pub fn asset(&self, asset: AssetId) -> AssetSupply {
        self.assets.get(&asset).copied().unwrap_or_default()
    }

    /// Every asset that moved, in order of id.
    pub fn assets(&self) -> impl Iterator<Item = (AssetId, &AssetSupply)> {
        self.assets.iter().map(|(a, s)| (*a, s))
    }
}
