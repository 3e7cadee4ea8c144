//! The per-log series (label `log`): offsets, size and segments read from each log at scrape
//! time, and the counters of appended and read records each log's entry keeps
//! ([`Activity`](crate::logs::Activity)), so that counting takes no lock shared between logs.
//!
//! To keep the series bounded, at most `max_logs` logs get a label of their own. A log keeps its
//! label until it is deleted; labels free go to the busiest unlabelled logs (most records
//! appended and read since the server started; ties by name) at the next scrape. The others are
//! summed under `log="_other"`, which appears once some log is left over and then stays:
//!
//! - its counters only ever grow: each scrape adds what every member did since the last one,
//!   and the last increments of a member that left (deleted, or given a label of its own), so
//!   Prometheus never sees a reset when the membership changes;
//! - its gauges are the sums of the current members' current values (the sum of their start
//!   offsets, of their sizes...), 0 when it has none.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::logs::name::OTHER_LOGS;
use crate::logs::{Activity, LogEntry, Logs};

/// One log's values at a scrape, or the sum of several.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    start_offset: u64,
    end_offset: u64,
    size_bytes: u64,
    segments: u64,
    counts: Counts,
}

impl Sample {
    fn of(entry: &LogEntry) -> Self {
        let log = entry.log();
        Self {
            start_offset: log.lowest_offset(),
            end_offset: log.next_offset(),
            size_bytes: log.size_bytes(),
            segments: log.segment_count() as u64,
            counts: Counts::of(entry.activity()),
        }
    }

    /// Adds `other`'s gauges (not its counts).
    fn add_gauges(&mut self, other: &Sample) {
        self.start_offset += other.start_offset;
        self.end_offset += other.end_offset;
        self.size_bytes += other.size_bytes;
        self.segments += other.segments;
    }
}

/// A log's counters at a scrape, or `_other`'s.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    append_records: u64,
    append_bytes: u64,
    read_records: u64,
    retention_deleted_segments: u64,
}

impl Counts {
    fn of(activity: &Activity) -> Self {
        Self {
            append_records: activity.append_records(),
            append_bytes: activity.append_bytes(),
            read_records: activity.read_records(),
            retention_deleted_segments: activity.retention_deleted_segments(),
        }
    }

    /// Adds what was counted between `before` and `now` (of the same log).
    fn add_since(&mut self, now: &Counts, before: &Counts) {
        self.append_records += now.append_records.saturating_sub(before.append_records);
        self.append_bytes += now.append_bytes.saturating_sub(before.append_bytes);
        self.read_records += now.read_records.saturating_sub(before.read_records);
        self.retention_deleted_segments +=
            now.retention_deleted_segments.saturating_sub(before.retention_deleted_segments);
    }
}

/// A per-log series: its name, its help, and its value in a sample.
type Series = (&'static str, &'static str, fn(&Sample) -> u64);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LogLabel {
    log: String,
}

/// The bound on labelled logs, and who has a label.
#[derive(Debug)]
pub(super) struct PerLog {
    max_logs: usize,
    /// Taken by one scrape at a time, for no I/O; appends and reads never take it. Holds whole
    /// values, so poisoning is ignored.
    labels: Mutex<Labels>,
}

/// Who has a label, and what `_other` has counted. A log is known by its [`Activity`], so that
/// a log deleted and created again under the same name is a new log.
#[derive(Debug, Default)]
struct Labels {
    /// The logs with a label of their own, by name.
    labelled: BTreeMap<String, Arc<Activity>>,
    /// The logs summed under `_other` at the last scrape, with their counts then.
    others: BTreeMap<String, (Arc<Activity>, Counts)>,
    /// `_other`'s counters: never decrease.
    other_counts: Counts,
    /// Whether `_other` has appeared: then it stays, so its counters never vanish and return.
    other_shown: bool,
}

impl PerLog {
    pub(super) fn new(max_logs: usize) -> Self {
        Self { max_logs, labels: Mutex::default() }
    }

    /// A registry of the per-log series as they are now.
    pub(super) fn registry(&self, logs: &Logs) -> Registry {
        let samples = self.samples(logs);
        let mut registry = Registry::default();
        let gauges: [Series; 4] = [
            ("girok_log_start_offset", "The lowest offset the log holds", |s| s.start_offset),
            ("girok_log_end_offset", "The offset the next record gets (next_offset)", |s| {
                s.end_offset
            }),
            ("girok_log_size_bytes", "Bytes of record data the log's segments hold", |s| {
                s.size_bytes
            }),
            ("girok_log_segments", "Segments the log holds, the active one included", |s| {
                s.segments
            }),
        ];
        for (name, help, value) in gauges {
            let family = Family::<LogLabel, Gauge>::default();
            for (log, sample) in &samples {
                let value = i64::try_from(value(sample)).unwrap_or(i64::MAX);
                family.get_or_create(&LogLabel { log: log.clone() }).set(value);
            }
            registry.register(name, help, family);
        }
        // Counters are registered without `_total`: the encoder adds it.
        let counters: [Series; 4] = [
            ("girok_append_records", "Records appended to the log", |s| s.counts.append_records),
            ("girok_append_bytes", "Bytes of record values appended to the log", |s| {
                s.counts.append_bytes
            }),
            ("girok_read_records", "Records read from the log", |s| s.counts.read_records),
            ("girok_retention_deleted_segments", "Segments deleted by retention", |s| {
                s.counts.retention_deleted_segments
            }),
        ];
        for (name, help, value) in counters {
            let family = Family::<LogLabel, Counter>::default();
            for (log, sample) in &samples {
                family.get_or_create(&LogLabel { log: log.clone() }).inc_by(value(sample));
            }
            registry.register(name, help, family);
        }
        registry
    }

    /// A sample per labelled log, then `_other` once any are left over (see the module doc).
    fn samples(&self, logs: &Logs) -> Vec<(String, Sample)> {
        let entries = logs.list();
        let mut labels = self.labels.lock().unwrap_or_else(PoisonError::into_inner);
        let labels = &mut *labels;
        let current: BTreeMap<&str, &Arc<LogEntry>> =
            entries.iter().map(|entry| (entry.name(), entry)).collect();
        // A deleted log gives its label back.
        labels.labelled.retain(|name, activity| {
            current.get(name.as_str()).is_some_and(|entry| Arc::ptr_eq(entry.activity(), activity))
        });
        let room = self.max_logs.saturating_sub(labels.labelled.len());
        if room > 0 {
            let mut unlabelled: Vec<_> = entries
                .iter()
                .filter(|entry| !labels.labelled.contains_key(entry.name()))
                .map(|entry| {
                    let counts = Counts::of(entry.activity());
                    (counts.append_records + counts.read_records, entry)
                })
                .collect();
            unlabelled.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name().cmp(b.1.name())));
            for (_, entry) in unlabelled.into_iter().take(room) {
                labels.labelled.insert(entry.name().to_string(), Arc::clone(entry.activity()));
            }
        }

        let mut samples = Vec::with_capacity(labels.labelled.len() + 1);
        let mut other = Sample::default();
        let mut members = BTreeMap::new();
        for entry in &entries {
            let sample = Sample::of(entry);
            if labels.labelled.contains_key(entry.name()) {
                samples.push((entry.name().to_string(), sample));
                continue;
            }
            other.add_gauges(&sample);
            let before = match labels.others.remove(entry.name()) {
                Some((activity, before)) if Arc::ptr_eq(&activity, entry.activity()) => before,
                Some((gone, before)) => {
                    labels.other_counts.add_since(&Counts::of(&gone), &before);
                    Counts::default()
                }
                None => Counts::default(),
            };
            labels.other_counts.add_since(&sample.counts, &before);
            members.insert(entry.name().to_string(), (Arc::clone(entry.activity()), sample.counts));
        }
        // Members that left since the last scrape: their last increments still count.
        for (gone, before) in std::mem::replace(&mut labels.others, members).into_values() {
            labels.other_counts.add_since(&Counts::of(&gone), &before);
        }
        labels.other_shown |= !labels.others.is_empty();
        if labels.other_shown {
            other.counts = labels.other_counts;
            samples.push((OTHER_LOGS.to_string(), other));
        }
        samples
    }
}
