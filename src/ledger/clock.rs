//! Whether this node's clock may give ledger time: over a store several nodes share, the node's
//! clock is checked against the store's (PostgreSQL's `clock_timestamp()`), and a node whose
//! clock is more than [`CLOCK_SKEW_MAX_SECONDS`] off takes no appends, so one node with a wrong
//! clock cannot move the region's ledger time. Not the place for the stamping itself (the
//! sequencer stamps `max(clock, latest recorded_at)`), nor for a store with one writer (sled),
//! which has no second clock to compare with.

use super::*;
use std::time::{Duration, Instant};

/// The most seconds a node's clock may differ from its shared store's before the node takes no
/// appends. Nodes run NTP, which keeps them within milliseconds; 5 s covers a round trip and the
/// one-second resolution of `recorded_at`, and is far below every backdating limit (a day).
pub const CLOCK_SKEW_MAX_SECONDS: i64 = 5;

/// How old the store clock's reading may be before the sequencer reads it again (one query a
/// second at most, outside the append lock). Between readings the store's time is the reading
/// carried forward by this node's monotonic clock, so a step of the node's wall clock shows at
/// the next batch, not the next reading.
const STORE_CLOCK_READ_EVERY: Duration = Duration::from_secs(1);

/// How old a reading may be for [`Ledger::check_accepting`] to refuse on it without the
/// sequencer reading the store again; an older one lets the request through to the sequencer,
/// which reads anew (so a node whose clock was corrected takes appends again).
const STORE_CLOCK_TRUSTED_FOR: Duration = Duration::from_secs(10);

/// Whether the ledger checks its clock against a shared store's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreClock {
    /// Appends are refused while the clock is more than [`CLOCK_SKEW_MAX_SECONDS`] off the
    /// store's. Every server.
    #[default]
    Checked,
    /// The ledger's clock is taken as it is: the demo, which writes a year of history with a
    /// clock of its own, and tests whose ledgers run on fixed clocks.
    Ignored,
}

/// The store's clock as this node last read it.
pub(super) struct ClockCheck {
    mode: StoreClock,
    /// The store's unix milliseconds, and when (this node's monotonic clock) they were read.
    reading: Mutex<Option<(i64, Instant)>>,
    /// Batches refused because the clock was off.
    refusals: AtomicU64,
    /// Whether the last check found the clock off: logged when it changes, not per batch.
    off: AtomicBool,
}

impl ClockCheck {
    pub(super) fn new(mode: StoreClock) -> Self {
        Self { mode, reading: Mutex::new(None), refusals: AtomicU64::new(0), off: AtomicBool::new(false) }
    }

    /// Reads the store's clock when the last reading is older than [`STORE_CLOCK_READ_EVERY`]
    /// (always with `force`). A store that cannot answer keeps the last reading: the append that
    /// follows meets the store's failure and answers it.
    pub(super) fn refresh(&self, store: &dyn Store, force: bool) {
        if self.mode == StoreClock::Ignored {
            return;
        }
        let stale = |r: &Option<(i64, Instant)>| r.is_none_or(|(_, at)| at.elapsed() >= STORE_CLOCK_READ_EVERY);
        if !force && !stale(&self.reading.lock().expect("clock lock")) {
            return;
        }
        match store.clock_unix_ms() {
            Ok(Some(ms)) => *self.reading.lock().expect("clock lock") = Some((ms, Instant::now())),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %crate::store::error_chain(&e), "couldn't read the store's clock"),
        }
    }

    /// This node's clock minus the store's, in seconds, from a reading at most `max_age` old
    /// (any age with `None`), carried forward by the monotonic clock; `None` without a reading
    /// (a store with one writer, the check off, or a store not reached yet).
    pub(super) fn skew(&self, clock: &dyn Clock, max_age: Option<Duration>) -> Option<i64> {
        let (ms, at) = (*self.reading.lock().expect("clock lock"))?;
        let age = at.elapsed();
        if max_age.is_some_and(|max| age > max) {
            return None;
        }
        let store_now_ms = ms.saturating_add(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
        Some(clock.now_unix().saturating_sub(store_now_ms.div_euclid(1000)))
    }

    /// The refusal of appends while `skew` is beyond the bound, counted; `Ok` within it.
    fn judge(&self, skew: Option<i64>) -> Result<(), Refusal> {
        match skew {
            Some(s) if s.abs() > CLOCK_SKEW_MAX_SECONDS => {
                self.refusals.fetch_add(1, Ordering::Relaxed);
                let message = format!(
                    "this node's clock is {}; it stamps no entries until its clock is corrected (NTP); \
                     send appends to another node",
                    describe(s)
                );
                if !self.off.swap(true, Ordering::Relaxed) {
                    tracing::error!("{message}");
                }
                Err(Refusal::new(Code::Unavailable, message))
            }
            Some(s) => {
                if self.off.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        skew_seconds = s,
                        "this node's clock agrees with the database's again; appends resume"
                    );
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The sequencer's check before it stamps a batch, on a reading at most
    /// [`STORE_CLOCK_READ_EVERY`] old (plus the append's wait).
    pub(super) fn check(&self, clock: &dyn Clock) -> Result<(), Refusal> {
        self.judge(self.skew(clock, None))
    }

    /// [`Ledger::check_accepting`]'s check: refuses only on a recent reading.
    pub(super) fn check_recent(&self, clock: &dyn Clock) -> Result<(), Refusal> {
        self.judge(self.skew(clock, Some(STORE_CLOCK_TRUSTED_FOR)))
    }

    pub(super) fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }
}

/// "N s ahead of the database's clock (the bound is 5 s)", or behind.
fn describe(skew: i64) -> String {
    let way = if skew > 0 { "ahead of" } else { "behind" };
    format!("{} s {way} the database's clock (the bound is {CLOCK_SKEW_MAX_SECONDS} s)", skew.unsigned_abs())
}

impl Ledger {
    /// This node's clock minus its shared store's (PostgreSQL's), in seconds, as last measured;
    /// `None` over a store with one writer (sled), with the check off, or before the store
    /// answered. Beyond [`CLOCK_SKEW_MAX_SECONDS`] either way the node takes no appends.
    pub fn clock_skew(&self) -> Option<i64> {
        self.shared.clock_check.skew(&*self.shared.clock, None)
    }

    /// Whether this node refuses appends because its clock is off the store's.
    pub fn is_clock_skewed(&self) -> bool {
        self.clock_skew().is_some_and(|s| s.abs() > CLOCK_SKEW_MAX_SECONDS)
    }

    /// Batches refused because this node's clock was off the store's.
    pub fn clock_skew_refusals(&self) -> u64 {
        self.shared.clock_check.refusals()
    }

    /// What is wrong with time on this node, for status: its clock off the store's beyond the
    /// bound (it takes no appends), and ledger time ahead of its clock beyond the bound (new
    /// entries carry ledger time, not the clock, until the clock catches up: a clock stepped
    /// back, or a node whose clock ran ahead wrote entries in the future).
    pub fn clock_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(s) = self.clock_skew().filter(|s| s.abs() > CLOCK_SKEW_MAX_SECONDS) {
            out.push(format!(
                "clock_skew: this node's clock is {}: it takes no appends until its clock is corrected (NTP)",
                describe(s)
            ));
        }
        let ahead = self.ledger_time_ahead_of_clock();
        if ahead > CLOCK_SKEW_MAX_SECONDS {
            let latest = self.shared.latest_recorded_at.load(Ordering::SeqCst);
            out.push(format!(
                "ledger_time_ahead: ledger time (the latest recorded_at, {}) is {ahead} s ahead of this node's \
                 clock: new entries are stamped with it, not the clock, until the clock catches up; if this \
                 node's clock is right, entries were stamped in the future (a node whose clock ran ahead)",
                crate::time::format_rfc3339(latest)
            ));
        }
        out
    }
}
