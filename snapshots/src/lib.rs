//! zachetka-snapshots
