//! What a replica must keep across crashes.
//!
//! The replica emits [`PersistDelta`]s in [`crate::Action::Persist`]; the host applies them,
//! in order, to its durable [`PersistedState`] with [`PersistedState::apply`] before it
//! executes any later action of the same batch. Every vote the replica sends is preceded
//! by the delta that records it, so a replica restarted from its persisted state never
//! casts a different vote for a (view, height) it already voted on.
//!
//! Committed blocks are stored by the host when it handles [`crate::Action::Commit`];
//! in the same durable step it calls [`PersistedState::record_commit`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::certificate::{CheckpointCertificate, PreparedCertificate};
use crate::error::Error;
use crate::message::{Message, SignedMessage, SignedProposal};
use crate::types::{Block, BlockHash, Height, View};

/// One durable change, emitted before the message it justifies is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PersistDelta {
    /// The current view, and whether the replica is changing to it (not yet installed).
    View {
        /// Current view.
        view: View,
        /// True between sending VIEW-CHANGE for `view` and installing it.
        view_changing: bool,
    },
    /// A pre-prepare accepted (or, by the leader, issued) for its height, with the blocks the
    /// replica holds for that height; replaces any earlier one at that height.
    PrePrepare(AcceptedProposal),
    /// An own PREPARE, COMMIT or CHECKPOINT vote; replaces the earlier vote of the same
    /// kind at that height.
    Vote(SignedMessage),
    /// A prepared certificate for its height (replaces one from an older view).
    Prepared(PreparedCertificate),
    /// The own VIEW-CHANGE message.
    ViewChange(SignedMessage),
    /// The NEW-VIEW message by which the current view was installed.
    NewView(SignedMessage),
    /// A new stable checkpoint; state at or below its height is garbage collected.
    StableCheckpoint(CheckpointCertificate),
}

/// A proposal a replica accepted for a height, with the blocks it holds for that height: the
/// proposed one when it is known (a proposal re-issued by a NEW-VIEW names its block by header
/// only), and the one of its prepared certificate if that differs (a later view may choose it
/// again). At most two blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedProposal {
    /// The leader's signed proposal.
    pub proposal: SignedProposal,
    /// Blocks held for this height.
    pub bodies: Vec<Block>,
}

/// The durable state of a replica (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedState {
    /// Current view.
    pub view: View,
    /// Whether a view change to `view` is in progress.
    pub view_changing: bool,
    /// Last stable checkpoint (low watermark).
    pub stable_checkpoint: CheckpointCertificate,
    /// Height of the last block the host stored (0 = none).
    pub last_committed: Height,
    /// Hash of that block.
    pub last_committed_hash: BlockHash,
    /// Accepted pre-prepares by height, with the blocks held for it.
    pub pre_prepares: BTreeMap<Height, AcceptedProposal>,
    /// Own latest PREPARE by height.
    pub prepares: BTreeMap<Height, SignedMessage>,
    /// Own latest COMMIT by height.
    pub commits: BTreeMap<Height, SignedMessage>,
    /// Latest prepared certificate by height.
    pub prepared: BTreeMap<Height, PreparedCertificate>,
    /// Own CHECKPOINT votes above the stable checkpoint.
    pub checkpoints: BTreeMap<Height, SignedMessage>,
    /// Own most recent VIEW-CHANGE messages by target view (at most
    /// [`PersistedState::OWN_VIEW_CHANGES_KEPT`]).
    pub view_changes: BTreeMap<View, SignedMessage>,
    /// NEW-VIEW that installed the current view.
    pub new_view: Option<SignedMessage>,
}

impl Default for PersistedState {
    fn default() -> Self {
        PersistedState::genesis()
    }
}

impl PersistedState {
    /// Number of own VIEW-CHANGE messages kept (the latest views), so that replicas still
    /// collecting a quorum for an older view can be answered after a restart.
    pub const OWN_VIEW_CHANGES_KEPT: usize = 4;

    /// The state of a replica that has never run.
    pub fn genesis() -> PersistedState {
        PersistedState {
            view: 0,
            view_changing: false,
            stable_checkpoint: CheckpointCertificate::genesis(),
            last_committed: 0,
            last_committed_hash: BlockHash::GENESIS,
            pre_prepares: BTreeMap::new(),
            prepares: BTreeMap::new(),
            commits: BTreeMap::new(),
            prepared: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
            view_changes: BTreeMap::new(),
            new_view: None,
        }
    }

    /// Applies one delta.
    pub fn apply(&mut self, delta: &PersistDelta) {
        match delta {
            PersistDelta::View {
                view,
                view_changing,
            } => {
                self.view = *view;
                self.view_changing = *view_changing;
            }
            PersistDelta::PrePrepare(pp) => {
                self.pre_prepares.insert(pp.proposal.height(), pp.clone());
            }
            PersistDelta::Vote(sm) => match &sm.message {
                Message::Prepare(v) => {
                    self.prepares.insert(v.height, sm.clone());
                }
                Message::Commit(v) => {
                    self.commits.insert(v.height, sm.clone());
                }
                Message::Checkpoint(c) => {
                    self.checkpoints.insert(c.height, sm.clone());
                }
                _ => {}
            },
            PersistDelta::Prepared(cert) => {
                self.prepared.insert(cert.height(), cert.clone());
            }
            PersistDelta::ViewChange(sm) => {
                if let Message::ViewChange(vc) = &sm.message {
                    self.view_changes.insert(vc.new_view, sm.clone());
                    while self.view_changes.len() > Self::OWN_VIEW_CHANGES_KEPT {
                        self.view_changes.pop_first();
                    }
                }
            }
            PersistDelta::NewView(sm) => self.new_view = Some(sm.clone()),
            PersistDelta::StableCheckpoint(cert) => {
                if cert.height > self.stable_checkpoint.height {
                    let h = cert.height;
                    self.stable_checkpoint = cert.clone();
                    self.pre_prepares.retain(|k, _| *k > h);
                    self.prepares.retain(|k, _| *k > h);
                    self.commits.retain(|k, _| *k > h);
                    self.prepared.retain(|k, _| *k > h);
                    self.checkpoints.retain(|k, _| *k > h);
                }
            }
        }
    }

    /// Records that the host durably stored committed `block` (call in the same durable
    /// step that stores the block).
    pub fn record_commit(&mut self, block: &Block) {
        if block.height > self.last_committed {
            self.last_committed = block.height;
            self.last_committed_hash = block.hash();
        }
    }

    /// Canonical encoding, for hosts that store the state as one blob.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes a state produced by [`PersistedState::encode`].
    pub fn decode(bytes: &[u8]) -> Result<PersistedState, Error> {
        postcard::from_bytes(bytes).map_err(|e| Error::Decode(e.to_string()))
    }
}
