//! zachetka-snapshots: snapshots of projection and rule state bound to a log position, so that
//! opening a ledger or rebuilding a read model starts from a snapshot and replays only the tail.
//! Not built yet: the crate holds its place in the fixed layout (DESIGN 2); today the ledger
//! replays the whole log through the rules on open (README, Operations).
