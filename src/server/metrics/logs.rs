//! The per-log series (label `log`): offsets, size and segments read from each log at scrape
//! time, and counters of appended and read records kept per log name by the handle.
//!
//! To keep the series bounded, only the `max_logs` busiest logs (most records appended and read
//! since the server started; ties by name) get a label of their own; the others are summed under
//! `log="_other"`, which appears only when some log is left over.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::logs::{LogEntry, Logs};

/// The label of the logs summed together.
pub(crate) const OTHER_LOGS: &str = "_other";

/// What the RPCs did to one log since the server started.
#[derive(Debug, Default)]
pub(crate) struct LogCounters {
    append_records: AtomicU64,
    append_bytes: AtomicU64,
    read_records: AtomicU64,
}

impl LogCounters {
    /// Counts `records` appended, `bytes` of values in all.
    pub(crate) fn appended(&self, records: u64, bytes: u64) {
        self.append_records.fetch_add(records, Ordering::Relaxed);
        self.append_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `records` read.
    pub(crate) fn read(&self, records: u64) {
        self.read_records.fetch_add(records, Ordering::Relaxed);
    }

    fn activity(&self) -> u64 {
        self.append_records.load(Ordering::Relaxed) + self.read_records.load(Ordering::Relaxed)
    }
}

/// One log's values at a scrape, or the sum of several.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    start_offset: u64,
    end_offset: u64,
    size_bytes: u64,
    segments: u64,
    append_records: u64,
    append_bytes: u64,
    read_records: u64,
    retention_deleted_segments: u64,
}

impl Sample {
    fn of(entry: &LogEntry, counters: Option<&LogCounters>) -> Self {
        let log = entry.log();
        let counted = |field: fn(&LogCounters) -> &AtomicU64| {
            counters.map_or(0, |c| field(c).load(Ordering::Relaxed))
        };
        Self {
            start_offset: log.lowest_offset(),
            end_offset: log.next_offset(),
            size_bytes: log.size_bytes(),
            segments: log.segment_count() as u64,
            append_records: counted(|c| &c.append_records),
            append_bytes: counted(|c| &c.append_bytes),
            read_records: counted(|c| &c.read_records),
            retention_deleted_segments: entry.retention_deleted_segments(),
        }
    }

    fn add(&mut self, other: &Sample) {
        self.start_offset += other.start_offset;
        self.end_offset += other.end_offset;
        self.size_bytes += other.size_bytes;
        self.segments += other.segments;
        self.append_records += other.append_records;
        self.append_bytes += other.append_bytes;
        self.read_records += other.read_records;
        self.retention_deleted_segments += other.retention_deleted_segments;
    }
}

/// A per-log series: its name, its help, and its value in a sample.
type Series = (&'static str, &'static str, fn(&Sample) -> u64);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LogLabel {
    log: String,
}

/// The per-log counters and the bound on labelled logs.
#[derive(Debug)]
pub(super) struct PerLog {
    max_logs: usize,
    /// By log name. Held briefly: a lookup per RPC, a pass over the logs per scrape (which
    /// drops the counters of logs no longer listed).
    counters: Mutex<HashMap<String, Arc<LogCounters>>>,
}

impl PerLog {
    pub(super) fn new(max_logs: usize) -> Self {
        Self { max_logs, counters: Mutex::new(HashMap::new()) }
    }

    pub(super) fn counters(&self, name: &str) -> Arc<LogCounters> {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = counters.get(name) {
            return Arc::clone(found);
        }
        let fresh = Arc::new(LogCounters::default());
        counters.insert(name.to_string(), Arc::clone(&fresh));
        fresh
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
            ("girok_append_records", "Records appended to the log", |s| s.append_records),
            ("girok_append_bytes", "Bytes of record values appended to the log", |s| {
                s.append_bytes
            }),
            ("girok_read_records", "Records read from the log", |s| s.read_records),
            ("girok_retention_deleted_segments", "Segments deleted by retention", |s| {
                s.retention_deleted_segments
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

    /// A sample per labelled log, then `_other` if any are left over.
    fn samples(&self, logs: &Logs) -> Vec<(String, Sample)> {
        // The lock is held across the listing, so a log created meanwhile finds its counters
        // after the stale ones are dropped, never before.
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let entries = logs.list();
        let listed: HashSet<&str> = entries.iter().map(|entry| entry.name()).collect();
        counters.retain(|name, _| listed.contains(name.as_str()));
        let mut ranked: Vec<_> = entries
            .iter()
            .map(|entry| {
                let counted = counters.get(entry.name()).map(Arc::as_ref);
                let activity = counted.map_or(0, LogCounters::activity);
                (activity, entry.name().to_string(), Sample::of(entry, counted))
            })
            .collect();
        drop(counters);
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let mut samples = Vec::with_capacity(ranked.len().min(self.max_logs) + 1);
        let mut other: Option<Sample> = None;
        for (i, (_, name, sample)) in ranked.into_iter().enumerate() {
            if i < self.max_logs {
                samples.push((name, sample));
            } else {
                other.get_or_insert_with(Sample::default).add(&sample);
            }
        }
        if let Some(other) = other {
            samples.push((OTHER_LOGS.to_string(), other));
        }
        samples
    }
}
