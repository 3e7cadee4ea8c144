//! The per-log series (label `log`): offsets, size and segments read from each log at scrape
//! time, and the counters of appended and read records each log's entry keeps
//! ([`Activity`](crate::logs::Activity)), so that counting takes no lock shared between logs.
//!
//! To keep the series bounded, only the `max_logs` busiest logs (most records appended and read
//! since the server started; ties by name) get a label of their own; the others are summed under
//! `log="_other"`, which appears only when some log is left over.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::logs::{LogEntry, Logs};

/// The label of the logs summed together.
pub(crate) const OTHER_LOGS: &str = "_other";

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
    fn of(entry: &LogEntry) -> Self {
        let (log, activity) = (entry.log(), entry.activity());
        Self {
            start_offset: log.lowest_offset(),
            end_offset: log.next_offset(),
            size_bytes: log.size_bytes(),
            segments: log.segment_count() as u64,
            append_records: activity.append_records(),
            append_bytes: activity.append_bytes(),
            read_records: activity.read_records(),
            retention_deleted_segments: activity.retention_deleted_segments(),
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

/// The bound on labelled logs.
#[derive(Debug)]
pub(super) struct PerLog {
    max_logs: usize,
}

impl PerLog {
    pub(super) fn new(max_logs: usize) -> Self {
        Self { max_logs }
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
        let mut ranked: Vec<_> = logs
            .list()
            .iter()
            .map(|entry| {
                let sample = Sample::of(entry);
                (sample.append_records + sample.read_records, entry.name().to_string(), sample)
            })
            .collect();
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
