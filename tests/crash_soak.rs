//! A crash soak of the shipped `girok-server`: cycle after cycle on one data directory, unary
//! producers, a ProduceStream producer and a ConsumeStream tail run until the server is killed
//! with SIGKILL at a random moment. After each restart the whole log is replayed from offset 0:
//! every acknowledged record reads back exactly as sent, the offsets are dense, what the tail
//! received before the kill is what the log holds, and nothing is stored twice or out of nowhere.
//!
//! `GIROK_SOAK_CYCLES` sets the number of cycles (default 3, sized for CI); `make crash-soak
//! CYCLES=1000` runs a long one in release and prints `crash soak: N cycles, M records acked, M
//! verified, 0 lost`. `GIROK_SOAK_SEED` replays a run's choices (fsync modes, delays, stream
//! lengths); `GIROK_SOAK_DIR` picks where the data directory goes (kept when the soak fails).

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::binary::{PROCESS_TIMEOUT, wait_with_timeout};
use common::soak::{Entry, Key, Rng, SoakDir, SoakServer, describe};
use girok::client::{Client, ClientError, Records};

/// How long one cycle (restart checks, load, kill) may take.
const CYCLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the producers and the tail may take to notice the kill.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(20);
const FSYNC_MODES: [&str; 3] = ["always", "interval", "never"];
const FSYNC_INTERVALS: [&str; 3] = ["5ms", "50ms", "100ms"];
/// Small segments and indexes, so that segments roll many times a cycle.
const SEGMENT_ENV: [(&str, &str); 2] =
    [("GIROK_SEGMENT_MAX_STORE_BYTES", "64KiB"), ("GIROK_SEGMENT_MAX_INDEX_BYTES", "12KiB")];
const UNARY_PRODUCERS: usize = 3;
/// The longest ProduceStream; each stream is half-closed after a random length up to this.
const MAX_STREAM_RECORDS: u64 = 2_000;
/// A ProduceStream pauses this long after each burst, so that a cycle appends a few thousand
/// records rather than hundreds of thousands (the log, and each replay of it, stays small).
const STREAM_PAUSE: Duration = Duration::from_millis(2);
/// How many acknowledged offsets, and how many offsets anywhere, each restart also reads with a
/// unary Consume.
const SPOT_CHECKS: usize = 16;

fn soak_cycles() -> usize {
    std::env::var("GIROK_SOAK_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(3)
}

fn soak_seed() -> u64 {
    std::env::var("GIROK_SOAK_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.expect("clock after 1970").as_nanos() as u64
    })
}

/// One offset of the log as last read: what its value is and when it was appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stored {
    entry: Entry,
    timestamp_ms: u64,
}

/// The log as the soak knows it: every offset read back after a restart, which must never change
/// again (a kill -9 loses nothing the file holds).
#[derive(Default)]
struct Model {
    log: Vec<Stored>,
    /// Every key the log holds: a second copy would be a record appended twice.
    keys: HashSet<Key>,
    /// How many values each producer sent, acknowledged or not.
    sent: HashMap<u32, u32>,
    next_producer: u32,
}

impl Model {
    fn was_sent(&self, key: Key) -> bool {
        self.sent.get(&key.producer).is_some_and(|&sent| key.seq < sent)
    }
}

/// One cycle's choices.
struct Cycle {
    number: usize,
    fsync: &'static str,
    interval: &'static str,
    /// How long the load runs before the kill.
    delay: Duration,
}

impl Cycle {
    fn env(&self) -> Vec<(&'static str, &'static str)> {
        let mut env = vec![("GIROK_FSYNC", self.fsync), ("GIROK_FSYNC_INTERVAL", self.interval)];
        env.extend(SEGMENT_ENV);
        env
    }

    fn name(&self) -> String {
        match self.fsync {
            "interval" => format!("cycle {} (fsync interval {})", self.number, self.interval),
            fsync => format!("cycle {} (fsync {fsync})", self.number),
        }
    }
}

/// Picks each cycle's fsync mode (every three cycles cover all three modes, in a random order),
/// sync interval and kill delay.
fn plan(cycles: usize, rng: &mut Rng) -> Vec<Cycle> {
    let mut modes = FSYNC_MODES;
    (0..cycles)
        .map(|number| {
            if number % modes.len() == 0 {
                for i in (1..modes.len()).rev() {
                    modes.swap(i, rng.between(0, i as u64) as usize);
                }
            }
            Cycle {
                number,
                fsync: modes[number % modes.len()],
                interval: rng.pick(&FSYNC_INTERVALS),
                delay: Duration::from_millis(rng.between(20, 400)),
            }
        })
        .collect()
}

/// What the clients saw during one cycle's load, checked against the log after the restart.
#[derive(Default)]
struct Seen {
    /// Each acknowledged offset and the key whose value was sent.
    acks: Vec<(u64, Key)>,
    /// What the tail received live, by offset.
    tailed: Vec<(u64, Stored)>,
    /// `(producer, values sent)`.
    sent: Vec<(u32, u32)>,
    /// How many of the acks came from ProduceStreams.
    streamed: u64,
    /// Anything that went wrong before the kill.
    problems: Vec<String>,
}

impl Seen {
    fn merge(&mut self, other: Seen) {
        self.acks.extend(other.acks);
        self.tailed.extend(other.tailed);
        self.sent.extend(other.sent);
        self.streamed += other.streamed;
        self.problems.extend(other.problems);
    }

    /// An error is expected once the server is killed; before that it is a failure.
    fn failed(&mut self, killed: &AtomicBool, what: String) {
        if !killed.load(Ordering::SeqCst) {
            self.problems.push(what);
        }
    }

    /// Records an ack; one producer's offsets only ever grow.
    fn ack(&mut self, offset: u64, key: Key, last: &mut Option<u64>) {
        if let Some(before) = *last
            && offset <= before
        {
            self.problems.push(format!("{key:?} acked at offset {offset}, after {before}"));
        }
        *last = Some(offset);
        self.acks.push((offset, key));
    }
}

/// One cycle's load and what it saw, kept until the next restart checks it.
struct Load {
    cycle: String,
    seen: Seen,
}

/// The soak's running figures.
#[derive(Default)]
struct Tally {
    cycles: usize,
    acked: u64,
    verified: u64,
    lost: u64,
    mismatched: u64,
    tailed_live: u64,
    stream_acks: u64,
    per_mode: HashMap<&'static str, usize>,
}

impl Tally {
    fn summary(&self) -> String {
        let mut line = format!(
            "crash soak: {} cycles, {} records acked, {} verified, {} lost",
            self.cycles, self.acked, self.verified, self.lost
        );
        if self.mismatched > 0 {
            line.push_str(&format!(", {} read back wrong", self.mismatched));
        }
        line
    }
}

/// Fails the soak, with the summary so far, if `problems` holds anything.
fn fail_on(problems: &[String], context: &str, tally: &Tally) {
    if problems.is_empty() {
        return;
    }
    println!("{}", tally.summary());
    let shown = problems.iter().take(40).map(String::as_str).collect::<Vec<_>>().join("\n  ");
    let more = problems.len().saturating_sub(40);
    panic!("{context}: {} problems:\n  {shown}\n  ({more} more)", problems.len());
}

#[test]
fn no_acknowledged_or_tailed_record_is_lost_across_a_kill_9_soak() {
    // Kill -9 at random moments under mixed load, on one directory, cycle after cycle: after
    // every restart the log replays densely from 0, holds every acknowledged record exactly as
    // sent and everything the tail saw, and `girok verify` finds no corruption.
    let started = Instant::now();
    let seed = soak_seed();
    let mut rng = Rng::new(seed);
    let cycles = plan(soak_cycles(), &mut rng);
    println!("crash soak: {} cycles, seed {seed} (GIROK_SOAK_SEED replays it)", cycles.len());
    let dir = SoakDir::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut model = Model::default();
    let mut tally = Tally::default();
    let mut previous: Option<Load> = None;
    let report_every = (cycles.len() / 20).max(1);

    for cycle in &cycles {
        let mut server = SoakServer::start(&dir.data(), &cycle.env(), &dir.server_log());
        let name = cycle.name();
        let load = rt.block_on(async {
            let run =
                run_cycle(&mut server, cycle, &mut model, previous.take(), &mut tally, &mut rng);
            match tokio::time::timeout(CYCLE_TIMEOUT, run).await {
                Ok(load) => load,
                Err(_) => panic!("{name}: timed out after {CYCLE_TIMEOUT:?}"),
            }
        });
        drop(server);
        fail_on(&load.seen.problems, &format!("{name}, before the kill"), &tally);
        let verified = girok_verify(&dir.data());
        fail_on(&verify_problems(&verified, false), &format!("girok verify after {name}"), &tally);
        tally.cycles += 1;
        *tally.per_mode.entry(cycle.fsync).or_default() += 1;
        previous = Some(load);
        if tally.cycles % report_every == 0 {
            println!(
                "crash soak: {} of {} cycles, {} records acked, {} verified, {:.0?}",
                tally.cycles,
                cycles.len(),
                tally.acked,
                tally.verified,
                started.elapsed()
            );
        }
    }

    // The last cycle's load is checked by one more restart, which then shuts down cleanly.
    let mut server = SoakServer::start(&dir.data(), &SEGMENT_ENV, &dir.server_log());
    rt.block_on(async {
        let check = async {
            let mut client = Client::connect(server.url()).await.expect("connect");
            check_restart(&mut client, &mut model, previous.take(), &mut tally, &mut rng).await
        };
        match tokio::time::timeout(CYCLE_TIMEOUT, check).await {
            Ok((_tail, problems)) => fail_on(&problems, "the final restart", &tally),
            Err(_) => panic!("the final restart: timed out after {CYCLE_TIMEOUT:?}"),
        }
    });
    let status = server.terminate();
    assert!(status.success(), "girok-server exited {status} on SIGTERM:\n{}", server.stderr_tail());
    let verified = girok_verify(&dir.data());
    fail_on(&verify_problems(&verified, true), "girok verify after the clean shutdown", &tally);

    let modes =
        FSYNC_MODES.map(|mode| format!("{mode} {}", tally.per_mode.get(mode).unwrap_or(&0)));
    println!(
        "crash soak: {} records in the log, {} of the acks from ProduceStream, {} received live by \
         the tail; cycles per fsync mode: {}; {:.1?}",
        model.log.len(),
        tally.stream_acks,
        tally.tailed_live,
        modes.join(", "),
        started.elapsed()
    );
    println!("{}", tally.summary());
    assert_eq!(tally.acked, tally.verified, "{}", tally.summary());
    assert_eq!(tally.lost + tally.mismatched, 0, "{}", tally.summary());
}

/// One cycle on a freshly started server: check the restart, then load it until the kill.
async fn run_cycle(
    server: &mut SoakServer,
    cycle: &Cycle,
    model: &mut Model,
    previous: Option<Load>,
    tally: &mut Tally,
    rng: &mut Rng,
) -> Load {
    let mut client = Client::connect(server.url()).await.expect("connect");
    let (tail, problems) = check_restart(&mut client, model, previous, tally, rng).await;
    fail_on(&problems, &format!("the restart before {}", cycle.name()), tally);
    let seen = load_until_killed(server, cycle, tail, model, rng).await;
    tally.acked += seen.acks.len() as u64;
    tally.tailed_live += seen.tailed.len() as u64;
    tally.stream_acks += seen.streamed;
    Load { cycle: cycle.name(), seen }
}

/// Replays the whole log after a restart and checks it against the model and against what the
/// previous cycle saw; answers the replay's stream (now tailing the end of the log) and the
/// problems found.
async fn check_restart(
    client: &mut Client,
    model: &mut Model,
    previous: Option<Load>,
    tally: &mut Tally,
    rng: &mut Rng,
) -> (Records, Vec<String>) {
    let mut problems = Vec::new();
    let cycle = previous.as_ref().map_or("no cycle".to_string(), |load| load.cycle.clone());
    if let Some(load) = &previous {
        for &(producer, sent) in &load.seen.sent {
            model.sent.insert(producer, sent);
        }
    }
    let range = client.offsets().await.expect("offsets");
    let known = model.log.len() as u64;
    if range.start != 0 {
        problems.push(format!("after {cycle}: the log starts at {}, not 0", range.start));
    }
    if range.end < known {
        problems.push(format!(
            "after {cycle}: the log ends at {}, but {known} records were read back before",
            range.end
        ));
    }

    let mut replay = client.consume_stream(0).await.expect("consume stream from 0");
    let mut last_timestamp = 0;
    for offset in 0..range.end {
        let record = match replay.next().await {
            Ok(Some(record)) => record,
            other => {
                problems.push(format!(
                    "after {cycle}: the replay ended at offset {offset} of {}: {other:?}",
                    range.end
                ));
                break;
            }
        };
        if record.offset != offset {
            problems.push(format!("after {cycle}: the replay gave {} for {offset}", record.offset));
            break;
        }
        if record.timestamp_ms < last_timestamp {
            problems.push(format!(
                "after {cycle}: offset {offset}'s timestamp {} is before {last_timestamp}",
                record.timestamp_ms
            ));
        }
        last_timestamp = record.timestamp_ms;
        let read = Stored { entry: Entry::of(&record.value), timestamp_ms: record.timestamp_ms };
        if let Some(before) = model.log.get(offset as usize) {
            if *before != read {
                problems.push(format!(
                    "after {cycle}: offset {offset} held {before:?} and now reads {read:?} ({})",
                    describe(&record.value)
                ));
            }
            continue;
        }
        match read.entry {
            Entry::Garbage => problems.push(format!(
                "after {cycle}: offset {offset} holds a value no producer sent ({})",
                describe(&record.value)
            )),
            Entry::Sent(key) if !model.was_sent(key) => {
                problems.push(format!("after {cycle}: offset {offset} holds {key:?}, never sent"))
            }
            Entry::Sent(key) if !model.keys.insert(key) => {
                problems.push(format!("after {cycle}: offset {offset} holds {key:?} a second time"))
            }
            Entry::Sent(_) | Entry::Empty => {}
        }
        model.log.push(read);
    }

    let end = model.log.len() as u64;
    let mut acked = Vec::new();
    if let Some(load) = &previous {
        let lost: Vec<u64> =
            load.seen.acks.iter().map(|&(offset, _)| offset).filter(|&o| o >= end).collect();
        if let (Some(first), Some(last)) = (lost.iter().min(), lost.iter().max()) {
            problems.insert(
                0,
                format!(
                    "LOST in {cycle}: {} acknowledged records, offsets {first} to {last}, are past \
                     the log's end {end} after the restart",
                    lost.len()
                ),
            );
        }
        for &(offset, key) in &load.seen.acks {
            match model.log.get(offset as usize) {
                None => {
                    tally.lost += 1;
                    problems.push(format!(
                        "LOST in {cycle}: offset {offset}, acked to {key:?} ({}), is past the \
                         log's end {end} after the restart",
                        describe(&key.value())
                    ));
                }
                Some(read) if read.entry == key.entry() => {
                    tally.verified += 1;
                    acked.push(offset);
                }
                Some(read) => {
                    tally.mismatched += 1;
                    problems.push(format!(
                        "WRONG in {cycle}: offset {offset}, acked to {key:?} ({}), reads {read:?} \
                         after the restart",
                        describe(&key.value())
                    ));
                }
            }
        }
        for &(offset, seen) in &load.seen.tailed {
            match model.log.get(offset as usize) {
                Some(read) if *read == seen => {}
                read => problems.push(format!(
                    "{cycle}: the tail received {seen:?} at offset {offset} before the kill; \
                     after the restart the log has {read:?} (it ends at {end})"
                )),
            }
        }
    }
    problems.extend(spot_check(client, model, &acked, rng).await);
    (replay, problems)
}

/// Reads some acknowledged offsets and some offsets anywhere with unary Consume, and one just
/// past the end, which must be `OUT_OF_RANGE` naming the end.
async fn spot_check(
    client: &mut Client,
    model: &Model,
    acked: &[u64],
    rng: &mut Rng,
) -> Vec<String> {
    let mut problems = Vec::new();
    let end = model.log.len() as u64;
    let mut offsets: Vec<u64> =
        (0..SPOT_CHECKS.min(acked.len())).map(|_| rng.pick(acked)).collect();
    if end > 0 {
        offsets.extend((0..SPOT_CHECKS).map(|_| rng.between(0, end - 1)));
    }
    for offset in offsets {
        let known = model.log[offset as usize];
        match client.consume(offset).await {
            Ok(record) => {
                let read =
                    Stored { entry: Entry::of(&record.value), timestamp_ms: record.timestamp_ms };
                if record.offset != offset || read != known {
                    problems.push(format!(
                        "Consume({offset}) answered offset {} with {read:?} ({}), the replay {known:?}",
                        record.offset,
                        describe(&record.value)
                    ));
                }
            }
            Err(err) => problems.push(format!("Consume({offset}): {err}")),
        }
    }
    match client.consume(end).await {
        Err(ClientError::OffsetOutOfRange { next_offset, .. }) if next_offset == end => {}
        other => problems.push(format!("Consume({end}) at the end answered {other:?}")),
    }
    problems
}

/// Runs the producers and the tail (already replayed to the end) for the cycle's delay, kills
/// the server, and collects what they saw.
async fn load_until_killed(
    server: &mut SoakServer,
    cycle: &Cycle,
    tail: Records,
    model: &mut Model,
    rng: &mut Rng,
) -> Seen {
    let url = server.url();
    let killed = Arc::new(AtomicBool::new(false));
    let producers = Arc::new(AtomicU32::new(model.next_producer));
    let last_timestamp = model.log.last().map_or(0, |stored| stored.timestamp_ms);
    let mut tasks = vec![tokio::spawn(follow(
        tail,
        model.log.len() as u64,
        last_timestamp,
        Arc::clone(&killed),
    ))];
    for _ in 0..UNARY_PRODUCERS {
        let producer = producers.fetch_add(1, Ordering::SeqCst);
        tasks.push(tokio::spawn(produce_unary(url.clone(), producer, Arc::clone(&killed))));
    }
    let streams =
        tokio::spawn(produce_streams(url, Arc::clone(&producers), Arc::clone(&killed), rng.fork()));

    tokio::time::sleep(cycle.delay).await;
    killed.store(true, Ordering::SeqCst);
    server.kill9();

    let mut seen = notice(streams, cycle).await;
    for task in tasks {
        seen.merge(notice(task, cycle).await);
    }
    model.next_producer = producers.load(Ordering::SeqCst);
    seen.problems.extend(duplicate_acks(&seen.acks));
    seen
}

/// Waits, bounded, for a client task to end after the kill.
async fn notice(task: tokio::task::JoinHandle<Seen>, cycle: &Cycle) -> Seen {
    match tokio::time::timeout(NOTICE_TIMEOUT, task).await {
        Ok(seen) => seen.expect("a client task panicked"),
        Err(_) => {
            panic!("{}: a client did not notice the kill in {NOTICE_TIMEOUT:?}", cycle.name())
        }
    }
}

/// Two acks of one offset, to different records, in one cycle.
fn duplicate_acks(acks: &[(u64, Key)]) -> Vec<String> {
    let mut by_offset = HashMap::new();
    acks.iter()
        .filter_map(|&(offset, key)| {
            let first = *by_offset.entry(offset).or_insert(key);
            (first != key).then(|| format!("offset {offset} acked to both {first:?} and {key:?}"))
        })
        .collect()
}

/// One producer sending one record per unary Produce, until the server goes away.
async fn produce_unary(url: String, producer: u32, killed: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    let mut sent = 0;
    let mut last = None;
    match Client::connect(url).await {
        Ok(mut client) => loop {
            let key = Key { producer, seq: sent };
            sent += 1;
            match client.produce(key.value()).await {
                Ok(offset) => seen.ack(offset, key, &mut last),
                Err(err) => {
                    seen.failed(&killed, format!("Produce of {key:?}: {err}"));
                    break;
                }
            }
        },
        Err(err) => seen.failed(&killed, format!("producer {producer}: connect: {err}")),
    }
    seen.sent.push((producer, sent));
    seen
}

/// ProduceStreams one after another, each of a random length and half-closed at its end (when
/// every record must have been acked), until the server goes away. A stream sends in bursts.
async fn produce_streams(
    url: String,
    producers: Arc<AtomicU32>,
    killed: Arc<AtomicBool>,
    mut rng: Rng,
) -> Seen {
    let mut seen = Seen::default();
    let mut client = match Client::connect(url).await {
        Ok(client) => client,
        Err(err) => {
            seen.failed(&killed, format!("stream producer: connect: {err}"));
            return seen;
        }
    };
    loop {
        let producer = producers.fetch_add(1, Ordering::SeqCst);
        let records = rng.between(1, MAX_STREAM_RECORDS) as u32;
        let burst = rng.between(1, 64) as u32;
        seen.sent.push((producer, records));
        let values = futures_util::stream::unfold(0, move |seq| async move {
            if seq == records {
                return None;
            }
            if seq > 0 && seq % burst == 0 {
                tokio::time::sleep(STREAM_PAUSE).await;
            }
            Some((Key { producer, seq }.value(), seq + 1))
        });
        let mut acks = match client.produce_stream(values).await {
            Ok(acks) => acks,
            Err(err) => {
                seen.failed(&killed, format!("ProduceStream of producer {producer}: {err}"));
                return seen;
            }
        };
        let mut acked = 0;
        let mut last = None;
        loop {
            match acks.next().await {
                Ok(Some(offset)) if acked < records => {
                    seen.ack(offset, Key { producer, seq: acked }, &mut last);
                    seen.streamed += 1;
                    acked += 1;
                }
                Ok(Some(offset)) => {
                    seen.problems.push(format!(
                        "producer {producer}: ack {offset} beyond the {records} records sent"
                    ));
                    return seen;
                }
                Ok(None) if acked == records => break,
                Ok(None) => {
                    seen.failed(
                        &killed,
                        format!("producer {producer}: the stream ended OK after {acked} of {records} acks"),
                    );
                    return seen;
                }
                Err(err) => {
                    seen.failed(&killed, format!("producer {producer}: after {acked} acks: {err}"));
                    return seen;
                }
            }
        }
    }
}

/// The tail: a ConsumeStream opened at 0 and replayed to `next`, now receiving live records.
async fn follow(
    mut tail: Records,
    mut next: u64,
    mut last_timestamp: u64,
    killed: Arc<AtomicBool>,
) -> Seen {
    let mut seen = Seen::default();
    loop {
        match tail.next().await {
            Ok(Some(record)) => {
                let stored =
                    Stored { entry: Entry::of(&record.value), timestamp_ms: record.timestamp_ms };
                if record.offset != next {
                    seen.problems.push(format!(
                        "the tail received {} after {}",
                        record.offset,
                        next - 1
                    ));
                    return seen;
                }
                if stored.entry == Entry::Garbage {
                    seen.problems.push(format!(
                        "the tail received a value no producer sent at {next}: {}",
                        describe(&record.value)
                    ));
                }
                if stored.timestamp_ms < last_timestamp {
                    seen.problems.push(format!("the tail's timestamps went back at offset {next}"));
                }
                last_timestamp = stored.timestamp_ms;
                seen.tailed.push((next, stored));
                next += 1;
            }
            Ok(None) => {
                seen.failed(&killed, format!("the tail ended OK at offset {next}"));
                return seen;
            }
            Err(err) => {
                seen.failed(&killed, format!("the tail at offset {next}: {err}"));
                return seen;
            }
        }
    }
}

/// `girok verify --data-dir DIR`, bounded in time.
fn girok_verify(data: &Path) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_girok"))
        .arg("verify")
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn girok verify");
    wait_with_timeout(child, PROCESS_TIMEOUT)
}

/// What is wrong with a `girok verify` run: a failure, corruption, or (after a clean shutdown,
/// `clean`) any tail left to cut.
fn verify_problems(output: &Output, clean: bool) -> Vec<String> {
    let report = String::from_utf8_lossy(&output.stdout);
    let mut problems: Vec<String> = report
        .lines()
        .filter(|line| line.starts_with("segment "))
        .filter(|line| line.contains("CORRUPT") || (clean && line.contains("cut on next open")))
        .map(str::to_string)
        .collect();
    let last = report.lines().last().unwrap_or("");
    if !output.status.success() || !last.ends_with(": OK") {
        problems.push(format!(
            "girok verify exited {}: {last} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    problems
}
