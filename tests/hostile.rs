//! Hostile clients over real gRPC. Each test lets one kind of hostile client loose twice:
//!
//! - on the shipped `girok-server`, whose descriptors, sockets, threads and memory are read from
//!   `/proc/<pid>` before (after a warm-up), during (sampled every 10 ms: the peak) and after;
//! - on `server::run` in this process, on a runtime of its own, whose alive-task count is read the
//!   same way (tasks cannot be counted from outside the binary).
//!
//! Each run checks that the client got the documented answer, that the server still serves
//! afterwards (health SERVING for "" and `log.v1.Log`, a Produce and Consume round trip), that
//! descriptors, sockets, threads and tasks return to their baseline, and that memory stayed
//! bounded. The figures are printed: `cargo test --test hostile -- --nocapture`.
//!
//! The servers run with `--fsync never` (durability is not what is under test) and segments that
//! do not roll, so every descriptor the figures show belongs to a connection or the process. The
//! sizes suit CI and scale through the environment: `GIROK_HOSTILE_CONNECTIONS` (2000),
//! `GIROK_HOSTILE_STREAMS` (1000 tails on one connection), `GIROK_HOSTILE_RESETS` (10000),
//! `GIROK_HOSTILE_STALL_MIB` (256: what the producer writes past the consumers that never read),
//! `GIROK_HOSTILE_CLIENTS` (200: garbage and vanishing clients), `GIROK_HOSTILE_MAX_CONNECTIONS`
//! (1024: the in-process server's connection limit, and the binary's when it has
//! `--max-connections`), `GIROK_HOSTILE_ROUNDS` (1: rounds of the scenario per server; more tell a
//! leak, which climbs every round, from memory the allocator keeps, which levels off). This
//! process raises its own soft descriptor limit to fit; the server child inherits it (and raises
//! its soft limit to the hard one itself).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use girok::api::errors::{DOMAIN, reason};
use girok::api::v1::{ConsumeRequest, ProduceRequest, Record as WireRecord};
use girok::client::Client;
use girok::server::{self, ServerConfig};
use girok::storage::{CommitLog, DEFAULT_MAX_RECORD_BYTES, DiskConfig, DiskLog, FsyncPolicy};
use h2::Reason;
use h2::client::{ResponseFuture, SendRequest};
use prost::Message;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::sync::{Barrier, Semaphore, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tonic::codegen::http;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_types::StatusExt;

/// How long a server may take to close a connection it refuses.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);
/// How long one scenario may run against one server.
const SCENARIO_LIMIT: Duration = Duration::from_secs(60);
/// How long descriptors, threads and tasks get to come back. Idle blocking-pool threads exit
/// after tokio's 10 s keep-alive, so this is a little more.
const SETTLE_WITHIN: Duration = Duration::from_secs(15);
const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The scenarios, one test each.

#[test]
fn garbage_instead_of_a_preface_is_dropped_and_leaves_nothing_behind() {
    // Random bytes, an HTTP/1.1 request, a TLS ClientHello and half a preface, on 200 connections:
    // the server closes every one promptly.
    hostile("garbage instead of a preface", Bounds::default(), garbage_instead_of_a_preface);
}

#[test]
fn garbage_after_a_valid_preface_gets_goaway_with_the_rfc_error_code() {
    // After a valid preface: noise, a frame over the size limit, DATA on stream 0, an undecodable
    // header block, a connection window overflow, an invalid setting and a CONTINUATION flood
    // each end the connection with GOAWAY and the RFC 9113 error code; a stream window overflow
    // resets only that stream; unknown frame types are ignored.
    hostile("garbage after a valid preface", Bounds::default(), garbage_after_a_valid_preface);
}

#[test]
fn oversized_messages_are_resource_exhausted_message_too_large() {
    // A message above the decode limit, unary or mid-ProduceStream, and a length prefix claiming
    // 4 GiB are RESOURCE_EXHAUSTED with ErrorInfo MESSAGE_TOO_LARGE (domain girok), promptly and
    // without buffering them; nothing is appended; an oversized header block gets 431.
    hostile("oversized messages", Bounds::default(), oversized_messages);
}

#[test]
fn a_thousand_tails_on_one_connection_all_get_their_records_and_leave_nothing_behind() {
    // 1,000 ConsumeStream tails on one HTTP/2 connection all replay, then all get the live
    // records; dropping them frees everything.
    hostile("1,000 tails on one connection", Bounds::default(), many_tails_on_one_connection);
}

#[test]
fn two_thousand_connections_are_served_or_closed_promptly_never_left_hanging() {
    // 2,000 connections each make a call and stay open: the first `max_connections` are served,
    // the rest are closed on accept within seconds (so is a well-behaved client while the limit is
    // reached), and once they go, well-behaved clients are served again.
    hostile("2,000 connections", Bounds::default(), many_connections);
}

#[test]
fn a_consumer_that_never_reads_holds_bounded_memory_while_others_are_served() {
    // Tails that never read (flow control never released, or the socket never read at all) while
    // a producer writes 256 MiB: the server's memory stays far below what was written, and a
    // reading tail and unary calls on other connections keep being served. The bounds leave room
    // for glibc's per-thread arenas, which keep what the blocking pool's threads freed: the heap
    // ends some 60 MiB up after one round and levels off near 110 MiB over more
    // (GIROK_HOSTILE_ROUNDS), and stays near 40 MiB at any volume under MALLOC_ARENA_MAX=1.
    let bounds = Bounds { anon_peak_mib: 192, anon_after_mib: 160 };
    hostile("consumers that never read", bounds, consumers_that_never_read);
}

#[test]
fn clients_vanishing_mid_stream_leave_nothing_behind_and_no_partial_record() {
    // Producers that vanish mid-message (RST or FIN) after their first acks, consumers that
    // vanish mid-replay, unary callers that vanish mid-request: everything they held is freed,
    // and only whole records were appended.
    hostile("clients vanishing mid-stream", Bounds::default(), clients_vanishing_mid_stream);
}

#[test]
fn rapid_stream_resets_are_absorbed_or_refused_with_enhance_your_calm() {
    // 10,000 streams opened and reset at once (rapid reset, CVE-2023-44487), with and without a
    // request body, and streams the server must reset itself (MadeYouReset): each connection
    // either survives or gets GOAWAY ENHANCE_YOUR_CALM, and a well-behaved client on another
    // connection keeps being served.
    hostile("rapid stream resets", Bounds::default(), rapid_stream_resets);
}

#[test]
#[ignore = "slow (over a minute): run with --ignored. Pins the handshake timeout: connections \
            that never complete the HTTP/2 preface are closed (ServerConfig::handshake_timeout)"]
fn connections_that_never_send_a_full_preface_are_closed_eventually() {
    // `max_connections` connections that send nothing or the first 20 bytes of the preface take
    // every connection slot. The server should close them at least as soon as it closes a dead
    // peer (its 30 s keepalive interval plus the 20 s timeout, and 10 s of slack), after which a
    // well-behaved client is served again.
    let config = ServerConfig::default();
    let within = config.keepalive_interval + config.keepalive_timeout + Duration::from_secs(10);
    raise_fd_limit(4096);
    let clients = client_runtime();
    let server = Binary::start(None);
    let (pid, target) = (server.pid(), server.target());
    let baseline = proc_gauges(pid);
    clients.block_on(async move {
        let openings: [&[u8]; 2] = [b"", &PREFACE[..20]];
        let mut held = Vec::new();
        for i in 0..target.max_connections {
            let mut tcp = TcpStream::connect(target.addr).await.expect("connect");
            tcp.write_all(openings[i % openings.len()]).await.expect("write");
            held.push(tcp);
        }
        let started = Instant::now();
        let accepted = |sockets: u64| sockets.saturating_sub(baseline.sockets);
        while accepted(proc_gauges(pid).sockets) < target.max_connections as u64 {
            assert!(
                started.elapsed() < CLOSE_WITHIN,
                "the server accepted {} of them",
                accepted(proc_gauges(pid).sockets)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let refused = one_connection(target.addr).await;
        assert!(matches!(refused, Fate::Refused(..)), "the silent connections hold every slot");
        tokio::time::sleep(within).await;
        let mut open = 0;
        for tcp in &mut held {
            let closed = read_until_closed(tcp, Vec::new(), Duration::from_millis(1)).await;
            open += usize::from(closed.is_none());
        }
        let sockets = accepted(proc_gauges(pid).sockets);
        assert_eq!(
            open,
            0,
            "after {:.0?}, {open} of {} connections that never sent a full preface are still \
             open (the server holds {sockets} sockets for them)",
            started.elapsed(),
            held.len()
        );
        healthy(target.addr).await;
    });
}

#[test]
fn connections_past_the_descriptor_limit_are_closed_promptly() {
    // Under a hard descriptor limit of 1,024 (which the server cannot raise), 1,100 connections
    // with the default --max-connections of 1,024: each is served or closed within seconds, none
    // is left hanging, and the server serves again once they go.
    raise_fd_limit(4096);
    let clients = client_runtime();
    let server = Binary::start(Some(1024));
    let target = server.target();
    // The server lowers --max-connections to fit its descriptors: 1,024 less 64 kept for
    // itself and 64 for open segments, shared half and half with the logs it may create.
    let limit = target.max_connections.min((1024 - 64 - 64) / 2);
    let outcome = clients.block_on(connect_many(target, 1100, limit));
    println!("[hard descriptor limit 1024] binary: {outcome}");
    clients.block_on(within("health after", Duration::from_secs(20), healthy(target.addr)));
}

#[test]
#[ignore = "open: the backlog is now 1024 (no retransmits or resets), but on this 2-core box a \
            burst of 1,024 debug-built connections still sees a median of ~0.4 s, above the \
            0.5 s this asks of every one"]
fn a_burst_of_connections_up_to_the_limit_is_served_without_handshake_retransmits() {
    // `max_connections` clients connecting at once each get their Offsets call answered within
    // half a second: the listening socket queues a burst the server is allowed to serve.
    raise_fd_limit(4096);
    let clients = client_runtime();
    let server = Binary::start(None);
    let target = server.target();
    let mut times: Vec<Duration> = clients.block_on(async move {
        let mut tasks = JoinSet::new();
        for _ in 0..target.max_connections {
            tasks.spawn(async move {
                let started = Instant::now();
                match one_connection(target.addr).await {
                    Fate::Served(..) => {}
                    Fate::Refused(took, err) => {
                        panic!("refused within the limit after {took:?}: {err}")
                    }
                    Fate::Hung => panic!("no answer within the limit"),
                }
                started.elapsed()
            });
        }
        let mut times = Vec::new();
        while let Some(took) = tasks.join_next().await {
            times.push(took.expect("client"));
        }
        times
    });
    times.sort();
    let listen = Command::new("ss")
        .args(["-ltnH", &format!("sport = :{}", target.addr.port())])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default();
    let slow = times.iter().filter(|t| **t >= Duration::from_millis(500)).count();
    assert_eq!(
        slow,
        0,
        "{slow} of {} connections took 500 ms or more (median {:.0?}, slowest {:.0?}); the \
         listening socket (ss: Recv-Q, Send-Q = backlog): {listen}",
        times.len(),
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

// ---------------------------------------------------------------------------------------------
// The harness: run a scenario against both servers, measure, check, report.

/// How much the binary's anonymous memory (heap) may grow during a scenario and stay grown
/// after it. Generous: glibc keeps what threads freed in per-thread arenas (4,000 tails leave the
/// heap some 35 MiB up after one round, levelling off near 70 MiB over 14 rounds); what matters
/// is that it does not scale with what the clients send.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    anon_peak_mib: u64,
    anon_after_mib: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Self { anon_peak_mib: 128, anon_after_mib: 96 }
    }
}

/// What a scenario needs to know about the server it attacks.
#[derive(Clone, Copy, Debug)]
struct Target {
    addr: SocketAddr,
    /// Connections the server serves at once.
    max_connections: usize,
    /// Whether this is the in-process server (whose memory is not measured, so scenarios that
    /// only matter for memory run smaller).
    in_process: bool,
}

impl Target {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// One reading of a server. The binary fills the `/proc` gauges, the in-process server `tasks`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Gauges {
    fds: u64,
    sockets: u64,
    threads: u64,
    rss_kib: u64,
    anon_kib: u64,
    tasks: u64,
}

impl Gauges {
    fn max(self, other: Self) -> Self {
        Self {
            fds: self.fds.max(other.fds),
            sockets: self.sockets.max(other.sockets),
            threads: self.threads.max(other.threads),
            rss_kib: self.rss_kib.max(other.rss_kib),
            anon_kib: self.anon_kib.max(other.anon_kib),
            tasks: self.tasks.max(other.tasks),
        }
    }

    /// Whether descriptors, sockets, threads and tasks are back at (or below) `baseline`.
    fn back_to(&self, baseline: &Self) -> bool {
        self.fds <= baseline.fds
            && self.sockets <= baseline.sockets
            && self.threads <= baseline.threads
            && self.tasks <= baseline.tasks
    }

    /// The steady part of a reading, for deciding that a server has settled.
    fn steady_part(&self) -> (u64, u64, u64) {
        (self.fds, self.sockets, self.tasks)
    }
}

/// Before, peak and after of one scenario against one server.
struct Figures {
    baseline: Gauges,
    peak: Gauges,
    after: Gauges,
    /// RssAnon after each round, in KiB.
    anon_after_rounds: Vec<u64>,
    /// How long the last round's figures took to come back.
    settled_in: Duration,
    /// How long the last round's scenario took.
    took: Duration,
}

impl Figures {
    fn binary_line(&self) -> String {
        let (b, p, a) = (&self.baseline, &self.peak, &self.after);
        let mib = |kib: u64| kib as f64 / 1024.0;
        format!(
            "fds {} / peak {} / after {}; sockets {} / {} / {}; threads {} / {} / {}; \
             VmRSS {:.1} / {:.1} / {:.1} MiB; RssAnon {:.1} / {:.1} / {:.1} MiB; \
             scenario {:.1?}, settled in {:.1?}",
            b.fds,
            p.fds,
            a.fds,
            b.sockets,
            p.sockets,
            a.sockets,
            b.threads,
            p.threads,
            a.threads,
            mib(b.rss_kib),
            mib(p.rss_kib),
            mib(a.rss_kib),
            mib(b.anon_kib),
            mib(p.anon_kib),
            mib(a.anon_kib),
            self.took,
            self.settled_in,
        ) + &self.rounds_line()
    }

    /// RssAnon after each round, when there was more than one.
    fn rounds_line(&self) -> String {
        if self.anon_after_rounds.len() < 2 {
            return String::new();
        }
        let rounds: Vec<String> = self
            .anon_after_rounds
            .iter()
            .map(|kib| format!("{:.1}", *kib as f64 / 1024.0))
            .collect();
        format!("; RssAnon after each round {} MiB", rounds.join(", "))
    }

    fn tasks_line(&self) -> String {
        format!(
            "tasks {} / peak {} / after {}; scenario {:.1?}, settled in {:.1?}",
            self.baseline.tasks, self.peak.tasks, self.after.tasks, self.took, self.settled_in
        )
    }
}

/// Runs `scenario` against the binary, then against the in-process server, checking and
/// printing the figures of each.
fn hostile<F, Fut>(name: &str, bounds: Bounds, scenario: F)
where
    F: Fn(Target) -> Fut,
    Fut: Future<Output = String>,
{
    let connections = knob("GIROK_HOSTILE_CONNECTIONS", 2000) as u64;
    raise_fd_limit(2 * connections + 4096);
    let clients = client_runtime();

    let binary = Binary::start(None);
    let pid = binary.pid();
    let (outcome, figures) =
        run_phase(&clients, name, binary.target(), &|| proc_gauges(pid), &scenario);
    let refusals = binary.log_lines_containing("connection limit reached");
    let accept_failures = binary.log_lines_containing("accept failed");
    drop(binary);
    println!("[{name}] binary: {outcome}");
    println!("[{name}] binary: {}", figures.binary_line());
    if refusals + accept_failures > 0 {
        println!(
            "[{name}] binary logged {refusals} connection-limit refusals, {accept_failures} \
             accept failures"
        );
    }
    let grew = |kib: u64| kib.saturating_sub(figures.baseline.anon_kib) / 1024;
    assert!(
        grew(figures.peak.anon_kib) <= bounds.anon_peak_mib,
        "{name}: the server's heap grew by {} MiB at its peak (bound {} MiB)",
        grew(figures.peak.anon_kib),
        bounds.anon_peak_mib
    );
    assert!(
        grew(figures.after.anon_kib) <= bounds.anon_after_mib,
        "{name}: the server's heap stayed {} MiB above its baseline (bound {} MiB)",
        grew(figures.after.anon_kib),
        bounds.anon_after_mib
    );

    let in_process = InProcess::start();
    let handle = in_process.runtime().handle().clone();
    let tasks =
        move || Gauges { tasks: handle.metrics().num_alive_tasks() as u64, ..Gauges::default() };
    let (outcome, figures) = run_phase(&clients, name, in_process.target(), &tasks, &scenario);
    drop(in_process);
    println!("[{name}] in-process: {outcome}");
    println!("[{name}] in-process: {}", figures.tasks_line());
}

/// Warms the server up, takes its baseline, runs the scenario while sampling the peak, then
/// checks that the server still serves and that its gauges come back.
fn run_phase<F, Fut>(
    clients: &Runtime,
    name: &str,
    target: Target,
    gauges: &(dyn Fn() -> Gauges + Sync),
    scenario: &F,
) -> (String, Figures)
where
    F: Fn(Target) -> Fut,
    Fut: Future<Output = String>,
{
    let which = if target.in_process { "in-process" } else { "binary" };
    clients.block_on(within("warm-up", Duration::from_secs(20), healthy(target.addr)));
    let baseline = steady(gauges);
    let mut figures = Figures {
        baseline,
        peak: baseline,
        after: baseline,
        anon_after_rounds: Vec::new(),
        settled_in: Duration::ZERO,
        took: Duration::ZERO,
    };
    let mut outcome = String::new();
    // More than one round tells a leak (the after figure climbs each round) from memory the
    // allocator keeps (it does not).
    for _ in 0..knob("GIROK_HOSTILE_ROUNDS", 1).max(1) {
        let stop = AtomicBool::new(false);
        let started = Instant::now();
        let peak = std::thread::scope(|scope| {
            let sampler = scope.spawn(|| {
                let mut peak = gauges();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                    peak = peak.max(gauges());
                }
                peak
            });
            // Stops the sampler even when the scenario panics, so the scope can end.
            let _stop = SetOnDrop(&stop);
            outcome = clients.block_on(within(name, SCENARIO_LIMIT, scenario(target)));
            stop.store(true, Ordering::Relaxed);
            sampler.join().expect("sampler")
        });
        figures.took = started.elapsed();
        figures.peak = figures.peak.max(peak);

        clients.block_on(within("health after", Duration::from_secs(20), healthy(target.addr)));
        let settling = Instant::now();
        let mut after = gauges();
        while !after.back_to(&baseline) && settling.elapsed() < SETTLE_WITHIN {
            std::thread::sleep(Duration::from_millis(50));
            after = gauges();
        }
        figures.settled_in = settling.elapsed();
        figures.after = after;
        figures.anon_after_rounds.push(after.anon_kib);
        assert!(
            after.back_to(&baseline),
            "{name} ({which}): not back to the baseline after {SETTLE_WITHIN:?}: baseline \
             {baseline:?}, peak {:?}, after {after:?}; the scenario saw: {outcome}",
            figures.peak
        );
    }
    (outcome, figures)
}

/// Sets the flag when dropped.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The first reading that three more 50 ms apart agree with (up to 5 s): connections from the
/// warm-up close asynchronously.
fn steady(gauges: &dyn Fn() -> Gauges) -> Gauges {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = gauges();
    let mut agreeing = 0;
    while agreeing < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = gauges();
        agreeing = if now.steady_part() == last.steady_part() { agreeing + 1 } else { 0 };
        last = now;
    }
    last
}

/// The runtime the hostile clients run on (the in-process server has its own).
fn client_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime")
}

/// Awaits `future`, failing the test if it takes longer than `limit`.
async fn within<T>(what: &str, limit: Duration, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: timed out after {limit:?}"),
    }
}

/// How many connections a scenario opens at once: below the server's listen backlog (128), whose
/// overflow costs a handshake retransmission (see the ignored burst test), and far below its
/// connection limit, since a closed connection frees its slot only once the server notices.
const CONNECTING_AT_ONCE: usize = 64;

/// Keeps a scenario's concurrent connections to [`CONNECTING_AT_ONCE`] (at most half the
/// connection limit): these scenarios are not about the limit (`many_connections` is).
fn connection_gate(target: Target) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(CONNECTING_AT_ONCE.min(target.max_connections / 2).max(1)))
}

/// A scale knob from the environment.
fn knob(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) => value.parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a count")),
        Err(_) => default,
    }
}

/// Raises this process's soft descriptor limit to `need` (at most the hard limit); children
/// started afterwards, the server among them, inherit it.
fn raise_fd_limit(need: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one `rlimit` through a pointer to a live local.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0, "getrlimit");
    if limit.rlim_cur < need {
        limit.rlim_cur = need.min(limit.rlim_max);
        // SAFETY: setrlimit reads one `rlimit` through a pointer to a live local.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0, "setrlimit");
    }
}

/// Reads a process's descriptors, sockets, threads and resident memory from `/proc`.
fn proc_gauges(pid: u32) -> Gauges {
    let mut gauges = Gauges::default();
    if let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for entry in entries.flatten() {
            gauges.fds += 1;
            let target = std::fs::read_link(entry.path()).unwrap_or_default();
            if target.to_string_lossy().starts_with("socket:") {
                gauges.sockets += 1;
            }
        }
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    for line in status.lines() {
        let mut words = line.split_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.next()) else { continue };
        let value = value.parse().unwrap_or(0);
        match key {
            "Threads:" => gauges.threads = value,
            "VmRSS:" => gauges.rss_kib = value,
            "RssAnon:" => gauges.anon_kib = value,
            _ => {}
        }
    }
    gauges
}

/// The server still serves: health SERVING for "" and `log.v1.Log`, and a record produced on a
/// fresh connection reads back. A connection refused at the limit is retried for up to 5 s: the
/// server frees the slots of a crowd of closed connections only as it notices each close.
async fn healthy(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match serves(addr).await {
            Ok(()) => return,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("a well-behaved client is not served: {err}"),
        }
    }
}

/// One attempt of [`healthy`]: connection and call errors come back as text; wrong answers fail
/// the test at once.
async fn serves(addr: SocketAddr) -> Result<(), String> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|err| format!("connect: {err}"))?;
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "log.v1.Log"] {
        let request = HealthCheckRequest { service: service.into() };
        let response = health.check(request).await.map_err(|err| format!("health: {err}"))?;
        let status = response.into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32, "health of {service:?}");
    }
    let mut client = Client::new(channel);
    static ROUND: AtomicU64 = AtomicU64::new(0);
    let value = format!("healthy-{}", ROUND.fetch_add(1, Ordering::Relaxed));
    let offset = client.produce(value.clone()).await.map_err(|err| format!("produce: {err}"))?;
    let record = client.consume(offset).await.map_err(|err| format!("consume: {err}"))?;
    assert_eq!(record.value, Bytes::from(value));
    Ok(())
}

/// The decode limit the servers run with: the default, raised to fit the default record limit.
fn decode_limit() -> usize {
    ServerConfig::default().max_decoding_message_size.max(DEFAULT_MAX_RECORD_BYTES + 64 * 1024)
}

// ---------------------------------------------------------------------------------------------
// The two servers.

/// The shipped `girok-server` as a child process over a temporary directory; killed (SIGKILL)
/// and reaped on drop, also when a test panics.
struct Binary {
    child: Child,
    addr: SocketAddr,
    max_connections: usize,
    stderr: PathBuf,
    _dir: TempDir,
}

impl Binary {
    /// Starts the server, under a descriptor limit (soft and hard) of `fd_limit` if given.
    fn start(fd_limit: Option<u64>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let stderr = dir.path().join("stderr.log");
        let settings = [("GIROK_FSYNC", "never"), ("GIROK_SEGMENT_MAX_STORE_BYTES", "4GiB")];
        let mut command = common::binary::server_command(&dir.path().join("data"), &settings);
        let max_connections = match max_connections_flag() {
            Some(limit) => {
                command.arg("--max-connections").arg(limit.to_string());
                limit
            }
            None => ServerConfig::default().max_connections,
        };
        if let Some(limit) = fd_limit {
            command = under_fd_limit(&command, limit);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn girok-server");
        let address = common::binary::listening_address(&mut child);
        // Built before the address arrives, so that the child is killed if it never does.
        let mut server =
            Self { child, addr: ([0, 0, 0, 0], 0).into(), max_connections, stderr, _dir: dir };
        let addr = address.recv_timeout(common::binary::PROCESS_TIMEOUT);
        server.addr = addr.expect("girok-server printed no address").parse().expect("address");
        server
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn target(&self) -> Target {
        Target { addr: self.addr, max_connections: self.max_connections, in_process: false }
    }

    /// How many lines of the server's log contain `text`.
    fn log_lines_containing(&self, text: &str) -> usize {
        let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        log.lines().filter(|line| line.contains(text)).count()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `command` run through `sh` under a descriptor limit, soft and hard, so that the server cannot
/// raise it (`exec` keeps the pid).
fn under_fd_limit(command: &Command, limit: u64) -> Command {
    let mut wrapped = Command::new("sh");
    wrapped
        .arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    wrapped
}

/// `Some(limit)` to pass as `--max-connections` if the binary has that flag.
fn max_connections_flag() -> Option<usize> {
    static HAS_FLAG: OnceLock<bool> = OnceLock::new();
    let has_flag = *HAS_FLAG.get_or_init(|| {
        let help = Command::new(env!("CARGO_BIN_EXE_girok-server"))
            .arg("--help")
            .output()
            .expect("girok-server --help");
        String::from_utf8_lossy(&help.stdout).contains("--max-connections")
    });
    has_flag.then(in_process_max_connections)
}

fn in_process_max_connections() -> usize {
    knob("GIROK_HOSTILE_MAX_CONNECTIONS", 1024)
}

/// `server::run` over a disk log in a temporary directory, on a runtime of its own so that its
/// alive tasks can be counted apart from the clients'.
struct InProcess {
    runtime: Option<Runtime>,
    addr: SocketAddr,
    max_connections: usize,
    shutdown: Option<oneshot::Sender<()>>,
    _dir: TempDir,
}

impl InProcess {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let disk = DiskConfig {
            fsync: FsyncPolicy::Never,
            max_store_bytes: 4 << 30,
            ..DiskConfig::default()
        };
        let log: Arc<dyn CommitLog> = Arc::new(DiskLog::open(dir.path(), disk).expect("open log"));
        let max_connections = in_process_max_connections();
        let config = ServerConfig { max_connections, ..ServerConfig::default() };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("in-process-server")
            .enable_all()
            .build()
            .expect("server runtime");
        let listener =
            runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        runtime.spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            server::run(listener, common::serving(&log), config, stop)
                .await
                .expect("server failed");
        });
        Self { runtime: Some(runtime), addr, max_connections, shutdown: Some(tx), _dir: dir }
    }

    fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("runtime")
    }

    fn target(&self) -> Target {
        Target { addr: self.addr, max_connections: self.max_connections, in_process: true }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Garbage on the wire.

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

async fn garbage_instead_of_a_preface(target: Target) -> String {
    let clients = knob("GIROK_HOSTILE_CLIENTS", 200);
    let openings: [(&'static str, Vec<u8>); 4] = [
        ("random bytes", noise(1, 64 * 1024)),
        ("an HTTP/1.1 request", b"GET / HTTP/1.1\r\nHost: girok\r\nAccept: */*\r\n\r\n".to_vec()),
        ("a TLS ClientHello", [&[0x16, 0x03, 0x01, 0x01, 0x00, 0x01][..], &noise(2, 256)].concat()),
        ("half a preface, then noise", [&PREFACE[..12], &noise(3, 4096)].concat()),
    ];
    let (gate, mut tasks) = (connection_gate(target), JoinSet::new());
    for i in 0..clients {
        let (label, bytes) = openings[i % openings.len()].clone();
        let gate = Arc::clone(&gate);
        tasks.spawn(async move {
            let _slot = gate.acquire_owned().await.expect("gate");
            let started = Instant::now();
            let (mut tcp, first) = connect_and_send(target.addr, &bytes).await;
            let closed = read_until_closed(&mut tcp, first, CLOSE_WITHIN).await;
            let Some((received, ending)) = closed else {
                panic!("{label}: still open after {CLOSE_WITHIN:?}")
            };
            (label, ending, received.len(), started.elapsed())
        });
    }
    let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut slowest = Duration::ZERO;
    while let Some(result) = tasks.join_next().await {
        let (label, ending, _received, took) = result.expect("garbage client");
        *seen.entry((label, ending)).or_default() += 1;
        slowest = slowest.max(took);
    }
    format!("{clients} connections all closed by the server (slowest {slowest:.0?}): {seen:?}")
}

/// What the server must answer a piece of garbage after the preface with.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// Closing the connection, with or without a GOAWAY.
    Close,
    /// GOAWAY with one of these error codes, then closing the connection.
    GoAway(&'static [u32]),
    /// RST_STREAM with this error code on stream 1; the connection lives on.
    Reset(u32),
}

async fn garbage_after_a_valid_preface(target: Target) -> String {
    let settings = frame(SETTINGS, 0, 0, &[]);
    let big_frame_header = {
        let mut header = frame(DATA, 0, 1, &[]);
        header[..3].copy_from_slice(&[0xff, 0xff, 0xff]);
        header
    };
    let headers = frame(HEADERS, END_HEADERS, 1, &header_block(target.addr, "ConsumeStream", &[]));
    let mut flood = frame(HEADERS, 0, 1, &header_block(target.addr, "ConsumeStream", &[]));
    for _ in 0..64 {
        flood.extend(frame(CONTINUATION, 0, 1, &[b'a'; 16 * 1024]));
    }
    let overflow = 0x7fff_ffffu32.to_be_bytes();
    // RFC 9113 calls for COMPRESSION_ERROR on an undecodable field block (§4.3); h2 answers
    // PROTOCOL_ERROR. Either refuses the connection, which is what matters here.
    let cases: Vec<(&str, Vec<u8>, Answer)> = vec![
        ("noise", noise(4, 64 * 1024), Answer::Close),
        (
            "a frame over the size limit",
            [&settings[..], &big_frame_header].concat(),
            Answer::GoAway(&[FRAME_SIZE_ERROR]),
        ),
        (
            "DATA on stream 0",
            [settings.clone(), frame(DATA, 0, 0, b"x")].concat(),
            Answer::GoAway(&[PROTOCOL_ERROR]),
        ),
        (
            "an undecodable header block",
            [settings.clone(), frame(HEADERS, END_HEADERS, 1, &[0xff; 32])].concat(),
            Answer::GoAway(&[COMPRESSION_ERROR, PROTOCOL_ERROR]),
        ),
        (
            "a connection window overflow",
            [settings.clone(), frame(WINDOW_UPDATE, 0, 0, &overflow)].concat(),
            Answer::GoAway(&[FLOW_CONTROL_ERROR]),
        ),
        (
            "SETTINGS_ENABLE_PUSH = 2",
            frame(SETTINGS, 0, 0, &setting(0x2, 2)),
            Answer::GoAway(&[PROTOCOL_ERROR]),
        ),
        (
            "a CONTINUATION flood",
            [settings.clone(), flood].concat(),
            Answer::GoAway(&[ENHANCE_YOUR_CALM, COMPRESSION_ERROR]),
        ),
        (
            "a stream window overflow",
            [settings.clone(), headers, frame(WINDOW_UPDATE, 0, 1, &overflow)].concat(),
            Answer::Reset(FLOW_CONTROL_ERROR),
        ),
    ];
    let rounds = (knob("GIROK_HOSTILE_CLIENTS", 200) / (cases.len() + 1)).max(1);
    let (gate, mut tasks) = (connection_gate(target), JoinSet::new());
    for round in 0..rounds {
        for (what, bytes, answer) in cases.clone() {
            let gate = Arc::clone(&gate);
            tasks.spawn(async move {
                let _slot = gate.acquire_owned().await.expect("gate");
                let sent = [PREFACE, &bytes].concat();
                let (mut tcp, first) = connect_and_send(target.addr, &sent).await;
                (what, answered(&mut tcp, first, what, answer).await)
            });
        }
        let gate = Arc::clone(&gate);
        tasks.spawn(async move {
            let _slot = gate.acquire_owned().await.expect("gate");
            unknown_frames_are_ignored(target.addr, round as u64).await
        });
    }
    let mut seen: BTreeMap<(&str, String), usize> = BTreeMap::new();
    while let Some(result) = tasks.join_next().await {
        let (what, answer) = result.expect("garbage client");
        *seen.entry((what, answer)).or_default() += 1;
    }
    format!("{} connections: {seen:?}", rounds * (cases.len() + 1))
}

/// Checks that the server answers as `answer` says, within [`CLOSE_WITHIN`], after sending
/// `received`; describes what it sent.
async fn answered(tcp: &mut TcpStream, received: Vec<u8>, what: &str, answer: Answer) -> String {
    if let Answer::Reset(code) = answer {
        let frames = read_frames_until(tcp, received, what, |f| f.kind == RST_STREAM).await;
        assert_eq!(goaway_code(&frames), None, "{what}: GOAWAY instead of RST_STREAM");
        let reset = frames.iter().find(|f| f.kind == RST_STREAM).expect("RST_STREAM");
        assert_eq!(reset.payload, code.to_be_bytes(), "{what}: RST_STREAM error code");
        return format!("RST_STREAM {}, connection open", code_name(code));
    }
    let closed = read_until_closed(tcp, received, CLOSE_WITHIN).await;
    let Some((received, ending)) = closed else {
        panic!("{what}: still open after {CLOSE_WITHIN:?}")
    };
    let goaway = goaway_code(&parse_frames(&received));
    if let Answer::GoAway(codes) = answer {
        // A reset can overtake the GOAWAY when the server closes with unread input.
        if ending == "EOF" || goaway.is_some() {
            let code = goaway.unwrap_or_else(|| panic!("{what}: closed without GOAWAY"));
            assert!(codes.contains(&code), "{what}: GOAWAY {}", code_name(code));
        }
    }
    match goaway {
        Some(code) => format!("GOAWAY {}, closed ({ending})", code_name(code)),
        None => format!("closed without GOAWAY ({ending})"),
    }
}

/// Reads frames until one satisfies `done`, failing if the connection closes first or nothing
/// like it comes within [`CLOSE_WITHIN`]. Answers every frame read, `received` before them.
async fn read_frames_until(
    tcp: &mut TcpStream,
    mut received: Vec<u8>,
    what: &str,
    done: impl Fn(&Frame) -> bool,
) -> Vec<Frame> {
    let mut buf = vec![0; 16 * 1024];
    let read = tokio::time::timeout(CLOSE_WITHIN, async {
        loop {
            let frames = parse_frames(&received);
            if frames.iter().any(&done) {
                return frames;
            }
            let n = tcp.read(&mut buf).await.unwrap_or(0);
            assert!(n > 0, "{what}: closed; the server sent {frames:?}");
            received.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    read.unwrap_or_else(|_| panic!("{what}: no answer within {CLOSE_WITHIN:?}"))
}

/// Frames of unknown types must be ignored (RFC 9113 §4.1): after a burst of them the
/// connection still answers a PING.
async fn unknown_frames_are_ignored(addr: SocketAddr, seed: u64) -> (&'static str, String) {
    let what = "unknown frame types, then PING";
    let mut bytes = [PREFACE, &frame(SETTINGS, 0, 0, &[])].concat();
    for i in 0..16u8 {
        bytes.extend(frame(0x20 + i, 0xff, u32::from(i), &noise(seed * 16 + u64::from(i), 4096)));
    }
    bytes.extend(frame(PING, 0, 0, b"hostile!"));
    let (mut tcp, first) = connect_and_send(addr, &bytes).await;
    let pong = |f: &Frame| f.kind == PING && f.flags & ACK != 0 && f.payload == b"hostile!";
    let frames = read_frames_until(&mut tcp, first, what, pong).await;
    assert_eq!(goaway_code(&frames), None, "{what}: GOAWAY");
    (what, "ignored; PING answered".to_string())
}

/// Connects, sends `bytes` and reads the server's first answer, retrying while the server closes
/// the connection without a word: that is a connection closed on accept at the connection limit
/// (an accepted one always hears the server's SETTINGS), not an answer to `bytes`. Sending first
/// matters: a client that waits for the server to speak can wait forever for a connection whose
/// handshake the kernel dropped from a full accept queue.
async fn connect_and_send(addr: SocketAddr, bytes: &[u8]) -> (TcpStream, Vec<u8>) {
    for _ in 0..100 {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        // The server may close before taking it all: a failed write shows in the read.
        let _ = tcp.write_all(bytes).await;
        let mut buf = vec![0; 16 * 1024];
        match tokio::time::timeout(CLOSE_WITHIN, tcp.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                buf.truncate(n);
                return (tcp, buf);
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(_) => panic!("no answer from the server within {CLOSE_WITHIN:?}"),
        }
    }
    panic!("closed without a word 100 times in a row")
}

/// Reads until the peer closes; `None` if it is still open after `limit`. Answers what was
/// received (`received`, then what was read) and how it ended (`EOF` or `reset`).
async fn read_until_closed(
    tcp: &mut TcpStream,
    mut received: Vec<u8>,
    limit: Duration,
) -> Option<(Vec<u8>, &'static str)> {
    let mut buf = vec![0; 16 * 1024];
    tokio::time::timeout(limit, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) => return (received, "EOF"),
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(_) => return (received, "reset"),
            }
        }
    })
    .await
    .ok()
}

/// `len` reproducible pseudo-random bytes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

// HTTP/2 frames written by hand (RFC 9113 §4.1, §6), for what the `h2` client will not send.

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

const PROTOCOL_ERROR: u32 = 0x1;
const FLOW_CONTROL_ERROR: u32 = 0x3;
const FRAME_SIZE_ERROR: u32 = 0x6;
const COMPRESSION_ERROR: u32 = 0x9;
const ENHANCE_YOUR_CALM: u32 = 0xb;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn setting(id: u16, value: u32) -> Vec<u8> {
    [&id.to_be_bytes()[..], &value.to_be_bytes()].concat()
}

/// A gRPC request's header block for `method` of `log.v1.Log`, plus `extra` headers, as HPACK
/// literals without indexing (RFC 7541 §6.2.2), so no decoder state is involved.
fn header_block(addr: SocketAddr, method: &str, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let (path, authority) = (format!("/log.v1.Log/{method}"), addr.to_string());
    let fields: [(&str, &[u8]); 6] = [
        (":method", b"POST"),
        (":scheme", b"http"),
        (":path", path.as_bytes()),
        (":authority", authority.as_bytes()),
        ("content-type", b"application/grpc"),
        ("te", b"trailers"),
    ];
    let mut out = Vec::new();
    for (name, value) in fields.iter().chain(extra) {
        out.push(0x00);
        hpack_int(&mut out, 7, name.len());
        out.extend_from_slice(name.as_bytes());
        hpack_int(&mut out, 7, value.len());
        out.extend_from_slice(value);
    }
    out
}

/// An HPACK integer with a `prefix`-bit prefix (RFC 7541 §5.1) in a fresh byte.
fn hpack_int(out: &mut Vec<u8>, prefix: u32, mut value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(value as u8);
        return;
    }
    out.push(max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    payload: Vec<u8>,
}

/// The whole frames in what a server sent (it sends no preface).
fn parse_frames(mut bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while bytes.len() >= 9 {
        let len = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
        if bytes.len() < 9 + len {
            break;
        }
        frames.push(Frame { kind: bytes[3], flags: bytes[4], payload: bytes[9..9 + len].to_vec() });
        bytes = &bytes[9 + len..];
    }
    frames
}

fn goaway_code(frames: &[Frame]) -> Option<u32> {
    let goaway = frames.iter().find(|f| f.kind == GOAWAY && f.payload.len() >= 8)?;
    Some(u32::from_be_bytes(goaway.payload[4..8].try_into().expect("4 bytes")))
}

fn code_name(code: u32) -> String {
    let name = match code {
        0x0 => "NO_ERROR",
        PROTOCOL_ERROR => "PROTOCOL_ERROR",
        FLOW_CONTROL_ERROR => "FLOW_CONTROL_ERROR",
        FRAME_SIZE_ERROR => "FRAME_SIZE_ERROR",
        COMPRESSION_ERROR => "COMPRESSION_ERROR",
        ENHANCE_YOUR_CALM => "ENHANCE_YOUR_CALM",
        _ => return format!("0x{code:x}"),
    };
    name.to_string()
}

// ---------------------------------------------------------------------------------------------
// gRPC over the `h2` client, for requests tonic will not make.

/// An HTTP/2 connection over `tcp`; its driver runs as a task that answers the connection's end.
async fn h2_over(tcp: TcpStream) -> (SendRequest<Bytes>, JoinHandle<Result<(), h2::Error>>) {
    let (send, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    (send, tokio::spawn(connection))
}

async fn h2_connect(addr: SocketAddr) -> (SendRequest<Bytes>, JoinHandle<Result<(), h2::Error>>) {
    h2_over(TcpStream::connect(addr).await.expect("connect")).await
}

fn grpc_request(addr: SocketAddr, method: &str) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/log.v1.Log/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request")
}

/// A message in gRPC's length-prefixed framing.
fn grpc_frame(message: &impl Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut framed = Vec::with_capacity(5 + body.len());
    framed.push(0);
    framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
    framed.extend_from_slice(&body);
    framed.into()
}

fn produce_request(value: impl Into<Bytes>) -> ProduceRequest {
    ProduceRequest {
        record: Some(WireRecord { value: value.into(), ..WireRecord::default() }),
        ..Default::default()
    }
}

/// A gRPC response read to its end: the HTTP status and the gRPC status, if any.
struct Reply {
    http: u16,
    status: Option<Status>,
}

async fn read_reply(response: ResponseFuture) -> Result<Reply, h2::Error> {
    let (parts, mut body) = response.await?.into_parts();
    let http = parts.status.as_u16();
    if let Some(status) = Status::from_header_map(&parts.headers) {
        return Ok(Reply { http, status: Some(status) });
    }
    while let Some(chunk) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk?.len());
    }
    let trailers = body.trailers().await?.unwrap_or_default();
    Ok(Reply { http, status: Status::from_header_map(&trailers) })
}

/// Asserts RESOURCE_EXHAUSTED with ErrorInfo MESSAGE_TOO_LARGE of girok's domain.
fn assert_message_too_large(status: &Status, what: &str) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{what}: {status:?}");
    let details = status.get_error_details();
    let info = details.error_info().unwrap_or_else(|| panic!("{what}: no ErrorInfo: {status:?}"));
    assert_eq!((info.reason.as_str(), info.domain.as_str()), (reason::MESSAGE_TOO_LARGE, DOMAIN));
}

// ---------------------------------------------------------------------------------------------
// Oversized messages.

async fn oversized_messages(target: Target) -> String {
    let limit = decode_limit();
    let channel = connect_channel(target).await;
    let mut client = Client::new(channel.clone());
    let before = client.offsets().await.expect("offsets");

    // Unary, eight at once on one connection.
    let oversized = Bytes::from(vec![7u8; limit + MIB as usize]);
    let mut unary = JoinSet::new();
    for _ in 0..8 {
        let (mut client, value) = (Client::new(channel.clone()), oversized.clone());
        unary.spawn(async move {
            let started = Instant::now();
            let status = client.inner().produce(produce_request(value)).await.unwrap_err();
            (status, started.elapsed())
        });
    }
    let mut slowest = Duration::ZERO;
    while let Some(result) = unary.join_next().await {
        let (status, took) = result.expect("oversized produce");
        assert_message_too_large(&status, "an oversized Produce");
        slowest = slowest.max(took);
    }

    // Mid-ProduceStream: the record before it is acked, then the stream ends.
    let values = [Bytes::from("before the oversized one"), oversized.clone()];
    let requests = tokio_stream::iter(values.into_iter().map(produce_request));
    let mut acks = client.inner().produce_stream(requests).await.expect("stream").into_inner();
    let first = acks.message().await.expect("first ack").expect("an ack").offset;
    let status = acks.message().await.expect_err("the oversized message ends the stream");
    assert_message_too_large(&status, "an oversized message mid-ProduceStream");

    // A length prefix that claims 4 GiB: answered at once, not after buffering the claim.
    let (mut send, driver) = h2_connect(target.addr).await;
    let (response, mut body) =
        send.send_request(grpc_request(target.addr, "Produce"), false).expect("request");
    let mut claim = vec![0, 0xff, 0xff, 0xff, 0xff];
    claim.extend(noise(5, 1024));
    body.send_data(claim.into(), false).expect("send");
    let started = Instant::now();
    let reply = within("a 4 GiB claim", CLOSE_WITHIN, read_reply(response)).await.expect("reply");
    let claim_took = started.elapsed();
    let status = reply.status.expect("a grpc-status");
    assert_message_too_large(&status, "a 4 GiB length prefix");

    // A header block above the 16 KiB limit: 431 (RFC 9113 §10.5.1), and the connection lives.
    let mut request = grpc_request(target.addr, "Offsets");
    let big = "a".repeat(32 * 1024);
    request.headers_mut().insert("x-hostile", big.parse().expect("header value"));
    let (response, mut body) = send.send_request(request, false).expect("request");
    body.send_data(grpc_frame(&girok::api::v1::OffsetsRequest::default()), true).expect("send");
    let header_answer = match within("oversized headers", CLOSE_WITHIN, read_reply(response)).await
    {
        Ok(reply) => {
            assert_eq!(reply.http, 431, "32 KiB of headers");
            "HTTP 431".to_string()
        }
        Err(err) => {
            assert_eq!(err.reason(), Some(Reason::REFUSED_STREAM), "32 KiB of headers: {err:?}");
            "REFUSED_STREAM".to_string()
        }
    };
    let (response, mut body) =
        send.send_request(grpc_request(target.addr, "Offsets"), false).expect("request");
    body.send_data(grpc_frame(&girok::api::v1::OffsetsRequest::default()), true).expect("send");
    let after = within("offsets", CLOSE_WITHIN, read_reply(response)).await.expect("reply");
    assert_eq!(after.status.map(|s| s.code()), Some(Code::Ok), "the connection still serves");
    drop(send);
    driver.abort();

    let now = client.offsets().await.expect("offsets");
    assert_eq!(now, before.start..first + 1, "only the one valid record was appended");
    format!(
        "8 unary Produce of {} MiB: RESOURCE_EXHAUSTED MESSAGE_TOO_LARGE/girok (slowest \
         {slowest:.0?}); mid-ProduceStream: ack then RESOURCE_EXHAUSTED MESSAGE_TOO_LARGE; a 4 GiB \
         length prefix: RESOURCE_EXHAUSTED MESSAGE_TOO_LARGE in {claim_took:.0?}; 32 KiB of \
         headers: {header_answer}; nothing oversized appended",
        (limit as u64 + MIB) / MIB
    )
}

async fn connect_channel(target: Target) -> Channel {
    Endpoint::from_shared(target.url())
        .expect("url")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect")
}

// ---------------------------------------------------------------------------------------------
// Many tails on one connection.

async fn many_tails_on_one_connection(target: Target) -> String {
    const RECORDS: u64 = 5;
    let streams = knob("GIROK_HOSTILE_STREAMS", 1000);
    let mut producer = Client::new(connect_channel(target).await);
    let start = producer.offsets().await.expect("offsets").end;
    for i in 0..RECORDS {
        producer.produce(format!("replayed-{i}")).await.expect("produce");
    }
    let channel = connect_channel(target).await;
    let replayed = Arc::new(Barrier::new(streams + 1));
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let mut tails = JoinSet::new();
    for _ in 0..streams {
        let (mut client, replayed) = (Client::new(channel.clone()), Arc::clone(&replayed));
        let mut release = release_rx.clone();
        tails.spawn(async move {
            let mut tail = client.consume_stream(start).await.expect("consume stream");
            for i in 0..2 * RECORDS {
                if i == RECORDS {
                    replayed.wait().await;
                }
                let record = tail.next().await.expect("record").expect("open");
                assert_eq!(record.offset, start + i);
            }
            // Hold the stream open until every tail is done, then drop them all together.
            let _ = release.wait_for(|go| *go).await;
            drop(tail);
        });
    }
    within("all tails replayed", Duration::from_secs(30), replayed.wait()).await;
    for i in 0..RECORDS {
        producer.produce(format!("live-{i}")).await.expect("produce");
    }
    let _ = release_tx.send(true);
    while let Some(result) = tails.join_next().await {
        result.expect("tail");
    }
    format!(
        "{streams} ConsumeStream tails on one connection: each got {RECORDS} replayed and \
         {RECORDS} live records in order, then all dropped"
    )
}

// ---------------------------------------------------------------------------------------------
// Many connections.

async fn many_connections(target: Target) -> String {
    let connections = knob("GIROK_HOSTILE_CONNECTIONS", 2000);
    connect_many(target, connections, target.max_connections).await
}

/// What became of one connection.
enum Fate {
    /// Served and still open: its request handle and driver, so it stays open.
    Served(SendRequest<Bytes>, JoinHandle<Result<(), h2::Error>>),
    /// Closed by the server, this long after connecting.
    Refused(Duration, std::io::Error),
    /// Neither within the limit.
    Hung,
}

/// Opens `connections` connections, each making one Offsets call, and holds them all. Expects
/// `min(connections, limit)` served and the rest refused promptly. They connect
/// [`CONNECTING_AT_ONCE`] at a time.
async fn connect_many(target: Target, connections: usize, limit: usize) -> String {
    let connecting = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let mut tasks = JoinSet::new();
    for _ in 0..connections {
        let connecting = Arc::clone(&connecting);
        tasks.spawn(async move {
            let _permit = connecting.acquire_owned().await.expect("semaphore");
            one_connection(target.addr).await
        });
    }
    let (mut held, mut refused, mut hung) = (Vec::new(), Vec::new(), 0);
    while let Some(result) = tasks.join_next().await {
        match result.expect("connection task") {
            Fate::Served(send, driver) => held.push((send, driver)),
            Fate::Refused(took, _) => refused.push(took),
            Fate::Hung => hung += 1,
        }
    }
    let slowest = refused.iter().max().copied().unwrap_or_default();
    let summary = format!(
        "{connections} connections against a limit of {limit}: {} served and held, {} closed by \
         the server (slowest {slowest:.0?}), {hung} left hanging",
        held.len(),
        refused.len()
    );
    assert_eq!(hung, 0, "{summary}");
    assert!(slowest < CLOSE_WITHIN, "{summary}");
    assert_eq!(held.len(), connections.min(limit), "{summary}");

    let mut newcomer = String::new();
    if held.len() == limit {
        let started = Instant::now();
        let fate = one_connection(target.addr).await;
        assert!(matches!(fate, Fate::Refused(..)), "a newcomer at the limit is closed promptly");
        newcomer =
            format!("; a well-behaved newcomer at the limit closed in {:.0?}", started.elapsed());
    }
    for (send, driver) in held {
        drop(send);
        driver.abort();
    }
    format!("{summary}{newcomer}")
}

/// Connects, makes one Offsets call over raw `h2`, and reports the connection's fate.
async fn one_connection(addr: SocketAddr) -> Fate {
    let started = Instant::now();
    let attempt = tokio::time::timeout(Duration::from_secs(10), async {
        let tcp = TcpStream::connect(addr).await?;
        let (mut send, connection) =
            h2::client::handshake(tcp).await.map_err(std::io::Error::other)?;
        let driver = tokio::spawn(connection);
        let (response, mut body) = send
            .send_request(grpc_request(addr, "Offsets"), false)
            .map_err(std::io::Error::other)?;
        body.send_data(grpc_frame(&girok::api::v1::OffsetsRequest::default()), true)
            .map_err(std::io::Error::other)?;
        let reply = read_reply(response).await.map_err(std::io::Error::other)?;
        assert_eq!(reply.status.map(|s| s.code()), Some(Code::Ok));
        Ok::<_, std::io::Error>((send, driver))
    })
    .await;
    match attempt {
        Ok(Ok((send, driver))) => Fate::Served(send, driver),
        Ok(Err(err)) => Fate::Refused(started.elapsed(), err),
        Err(_) => Fate::Hung,
    }
}

// ---------------------------------------------------------------------------------------------
// Consumers that never read.

async fn consumers_that_never_read(target: Target) -> String {
    const RECORD: usize = 16 * 1024;
    const STALLED: usize = 8;
    // The in-process server's memory is not measured: enough to fill every buffer is enough.
    let mib = if target.in_process { 32 } else { knob("GIROK_HOSTILE_STALL_MIB", 256) };
    let records = (mib * 1024 * 1024 / RECORD) as u64;
    let mut producer = Client::new(connect_channel(target).await);
    let start = producer.offsets().await.expect("offsets").end;

    // Tails whose flow-control window is never released: the h2 client reads the socket but
    // never hands the data on, so after 64 KiB the server may send no more.
    let (send, driver) = h2_connect(target.addr).await;
    let mut unread = Vec::new();
    for _ in 0..STALLED {
        let mut send = send.clone().ready().await.expect("ready");
        let (response, mut body) =
            send.send_request(grpc_request(target.addr, "ConsumeStream"), false).expect("request");
        body.send_data(grpc_frame(&ConsumeRequest { offset: start, ..Default::default() }), true)
            .expect("send");
        unread.push(response);
    }
    // Tails that open their windows as wide as HTTP/2 allows and never read the socket: only
    // TCP holds the server back.
    let mut deaf = Vec::new();
    for _ in 0..STALLED {
        let mut tcp = TcpStream::connect(target.addr).await.expect("connect");
        let request = [
            PREFACE,
            &frame(SETTINGS, 0, 0, &setting(0x4, 0x7fff_ffff)),
            &frame(WINDOW_UPDATE, 0, 0, &(0x7fff_ffffu32 - 65_535).to_be_bytes()),
            &frame(HEADERS, END_HEADERS, 1, &header_block(target.addr, "ConsumeStream", &[])),
            &frame(
                DATA,
                END_STREAM,
                1,
                &grpc_frame(&ConsumeRequest { offset: start, ..Default::default() }),
            ),
        ]
        .concat();
        tcp.write_all(&request).await.expect("write");
        deaf.push(tcp);
    }

    // A tail that reads, on a connection of its own.
    let mut reader = Client::new(connect_channel(target).await);
    let mut tail = reader.consume_stream(start).await.expect("consume stream");
    let reading = tokio::spawn(async move {
        for i in 0..records {
            let record = tail.next().await.expect("record").expect("open");
            assert_eq!(record.offset, start + i);
        }
    });
    // Unary calls on yet another connection, timed.
    let stop = Arc::new(AtomicBool::new(false));
    let probing = {
        let (stop, mut client) = (Arc::clone(&stop), Client::new(connect_channel(target).await));
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                client.offsets().await.expect("offsets while consumers stall");
                slowest = slowest.max(started.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            slowest
        })
    };

    let value = Bytes::from(vec![b'r'; RECORD]);
    let values = tokio_stream::iter((0..records).map(move |_| value.clone()));
    let mut acks = producer.produce_stream(values).await.expect("produce stream");
    let mut acked = 0;
    while let Some(offset) = acks.next().await.expect("ack") {
        assert_eq!(offset, start + acked);
        acked += 1;
    }
    assert_eq!(acked, records);
    within("the reading tail", Duration::from_secs(30), reading).await.expect("reading tail");
    stop.store(true, Ordering::Relaxed);
    let slowest = probing.await.expect("probe");
    assert!(slowest < Duration::from_secs(2), "a unary call took {slowest:?} during the stall");

    drop((unread, send, deaf));
    driver.abort();
    format!(
        "{mib} MiB in {records} records past {STALLED} tails with closed windows and \
         {STALLED} that never read the socket: the reading tail got every record, the slowest \
         unary call took {slowest:.0?}"
    )
}

// ---------------------------------------------------------------------------------------------
// Clients that vanish.

async fn clients_vanishing_mid_stream(target: Target) -> String {
    let clients = knob("GIROK_HOSTILE_CLIENTS", 200);
    let mut client = Client::new(connect_channel(target).await);
    let start = client.offsets().await.expect("offsets").end;
    for i in 0..100 {
        client.produce(format!("seed-{i}")).await.expect("produce");
    }

    let (gate, mut tasks) = (connection_gate(target), JoinSet::new());
    for i in 0..clients {
        // Half of them reset the connection (SO_LINGER 0), half close it (FIN).
        let abrupt = i % 2 == 0;
        let gate = Arc::clone(&gate);
        tasks.spawn(async move {
            let _slot = gate.acquire_owned().await.expect("gate");
            let mut refused = 0;
            loop {
                match vanish(target, i, start, abrupt).await {
                    Ok(kind) => return (kind, abrupt, refused),
                    // Closed on accept, the documented answer at --max-connections: the server
                    // has not yet released the connections of clients that vanished before.
                    Err(err) if err.is_io() && refused < 100 => {
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(err) => panic!("client {i}: {err:?}"),
                }
            }
        });
    }
    let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut refusals = 0;
    while let Some(result) = tasks.join_next().await {
        let (kind, abrupt, refused) = result.expect("vanishing client");
        *seen.entry((kind, if abrupt { "RST" } else { "FIN" })).or_default() += 1;
        refusals += refused;
    }

    // Everything appended is a whole record someone sent.
    let whole: HashSet<String> = (0..clients)
        .flat_map(|i| (0..WHOLE_BEFORE_VANISHING).map(move |j| format!("vanish-{i}-{j}")))
        .chain((0..100).map(|i| format!("seed-{i}")))
        .collect();
    let end = client.offsets().await.expect("offsets").end;
    let mut appended = 0;
    let mut tail = client.consume_stream(start).await.expect("consume stream");
    for offset in start..end {
        let record = tail.next().await.expect("record").expect("open");
        assert_eq!(record.offset, offset);
        let value = String::from_utf8_lossy(&record.value).into_owned();
        assert!(whole.contains(&value), "offset {offset} holds {value:?}, which no one sent whole");
        appended += usize::from(value.starts_with("vanish-"));
    }
    format!(
        "{clients} clients vanished: {seen:?} ({refusals} attempts closed at the connection limit \
         and retried); {appended} whole records of theirs appended, none partial"
    )
}

/// Whole records a vanishing producer sends before half of one more.
const WHOLE_BEFORE_VANISHING: usize = 10;

/// One client that vanishes mid-call, the `i % 6`th kind: closing with RST when `abrupt`, else
/// FIN. Fails only if its connection is closed before the call is under way.
async fn vanish(
    target: Target,
    i: usize,
    start: u64,
    abrupt: bool,
) -> Result<&'static str, h2::Error> {
    let tcp = TcpStream::connect(target.addr).await.expect("connect");
    if abrupt {
        tcp.set_zero_linger().expect("linger");
    }
    let (mut send, connection) = h2::client::handshake(tcp).await?;
    // Aborted on every path: that is the vanishing.
    let driver = AbortOnDrop(tokio::spawn(connection));
    let kind = match i % 6 {
        0 | 1 => {
            let (response, mut body) =
                send.send_request(grpc_request(target.addr, "ProduceStream"), false)?;
            for j in 0..WHOLE_BEFORE_VANISHING {
                body.send_data(grpc_frame(&produce_request(format!("vanish-{i}-{j}"))), false)?;
            }
            body.send_data(half_a_message(i), false)?;
            let (_, mut acks) = response.await?.into_parts();
            let first = acks.data().await.expect("an ack")?;
            assert!(!first.is_empty());
            "ProduceStream, mid-message after an ack"
        }
        2 | 3 => {
            let (response, mut body) =
                send.send_request(grpc_request(target.addr, "ConsumeStream"), false)?;
            body.send_data(
                grpc_frame(&ConsumeRequest { offset: start, ..Default::default() }),
                true,
            )?;
            let (_, mut records) = response.await?.into_parts();
            let first = records.data().await.expect("a record")?;
            assert!(!first.is_empty());
            "ConsumeStream, mid-replay"
        }
        _ => {
            let (_response, mut body) =
                send.send_request(grpc_request(target.addr, "Produce"), false)?;
            body.send_data(half_a_message(i), false)?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            "unary Produce, mid-message"
        }
    };
    drop((driver, send));
    Ok(kind)
}

/// Aborts a task when dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The first half of a produce request's message, whose length prefix promises all of it.
fn half_a_message(i: usize) -> Bytes {
    let whole = grpc_frame(&produce_request(format!("PARTIAL-{i}-{}", "x".repeat(1000))));
    whole.slice(..whole.len() / 2)
}

// ---------------------------------------------------------------------------------------------
// Rapid resets.

async fn rapid_stream_resets(target: Target) -> String {
    let resets = knob("GIROK_HOSTILE_RESETS", 10_000);
    let stop = Arc::new(AtomicBool::new(false));
    let probing = {
        let (stop, mut client) = (Arc::clone(&stop), Client::new(connect_channel(target).await));
        tokio::spawn(async move {
            let (mut slowest, mut calls) = (Duration::ZERO, 0);
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                client.produce("while streams are reset").await.expect("produce during resets");
                slowest = slowest.max(started.elapsed());
                calls += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (slowest, calls)
        })
    };
    let headers_only = reset_streams(target.addr, resets, false).await;
    let with_body = reset_streams(target.addr, resets, true).await;
    let provoked =
        provoked_resets(target.addr, 2 * ServerConfig::default().max_local_error_reset_streams)
            .await;
    stop.store(true, Ordering::Relaxed);
    let (slowest, calls) = probing.await.expect("probe");
    assert!(slowest < Duration::from_secs(2), "a produce took {slowest:?} during the resets");
    format!(
        "HEADERS then RST_STREAM: {headers_only}; HEADERS, DATA then RST_STREAM: {with_body}; \
         streams the server must reset (window overflows): {provoked}; {calls} produce calls on \
         another connection meanwhile, slowest {slowest:.0?}"
    )
}

/// Opens and at once resets `count` ConsumeStream streams on one connection. Answers what
/// happened: all absorbed (and the connection still serves) or GOAWAY ENHANCE_YOUR_CALM.
async fn reset_streams(addr: SocketAddr, count: usize, with_body: bool) -> String {
    let (send, driver) = h2_connect(addr).await;
    let (mut send, mut failed, mut sent) = (Some(send), None, 0);
    for _ in 0..count {
        let mut ready = match send.take().expect("sender").ready().await {
            Ok(ready) => ready,
            Err(err) => {
                failed = Some(err);
                break;
            }
        };
        let (response, mut body) =
            match ready.send_request(grpc_request(addr, "ConsumeStream"), false) {
                Ok(stream) => stream,
                Err(err) => {
                    failed = Some(err);
                    break;
                }
            };
        if with_body {
            let _ = body
                .send_data(grpc_frame(&ConsumeRequest { offset: 0, ..Default::default() }), false);
        }
        body.send_reset(Reason::CANCEL);
        drop(response);
        send = Some(ready);
        sent += 1;
    }
    // The connection either still serves or was told to calm down.
    if let Some(send) = send {
        match offsets_over(addr, send).await {
            Ok(()) => {
                driver.abort();
                return format!("{sent} of {count} sent, absorbed; the connection still serves");
            }
            Err(err) => failed = Some(err),
        }
    }
    let failed = failed.expect("an error");
    // The driver holds the connection's own error, GOAWAY reason included.
    let err = match tokio::time::timeout(CLOSE_WITHIN, driver).await {
        Ok(Ok(Err(err))) => err,
        _ => failed,
    };
    format!("{sent} of {count} sent, then {}", calmed(err))
}

/// One Offsets call over `send`.
async fn offsets_over(addr: SocketAddr, send: SendRequest<Bytes>) -> Result<(), h2::Error> {
    let mut send = send.ready().await?;
    let (response, mut body) = send.send_request(grpc_request(addr, "Offsets"), false)?;
    body.send_data(grpc_frame(&girok::api::v1::OffsetsRequest::default()), true)?;
    let reply = within("offsets after resets", CLOSE_WITHIN, read_reply(response)).await?;
    assert_eq!(reply.status.map(|s| s.code()), Some(Code::Ok));
    Ok(())
}

/// The only acceptable ways for the server to end a resetting connection: GOAWAY
/// ENHANCE_YOUR_CALM, or closing it so fast that the client's next write fails before it reads
/// the GOAWAY.
fn calmed(err: h2::Error) -> String {
    if err.is_io() {
        return format!("closed by the server ({err})");
    }
    assert_eq!(err.reason(), Some(Reason::ENHANCE_YOUR_CALM), "{err:?}");
    assert!(err.is_go_away() && err.is_remote(), "{err:?}");
    "GOAWAY ENHANCE_YOUR_CALM".to_string()
}

/// Opens streams and overflows each one's flow-control window, a stream error the server answers
/// with RST_STREAM FLOW_CONTROL_ERROR (MadeYouReset, CVE-2025-8671). Past
/// `max_local_error_reset_streams` the server must end the connection with GOAWAY
/// ENHANCE_YOUR_CALM.
async fn provoked_resets(addr: SocketAddr, count: usize) -> String {
    let block = header_block(addr, "ConsumeStream", &[]);
    let mut bytes = [PREFACE, &frame(SETTINGS, 0, 0, &[])].concat();
    for i in 0..count as u32 {
        let stream = 2 * i + 1;
        bytes.extend(frame(HEADERS, END_HEADERS, stream, &block));
        bytes.extend(frame(WINDOW_UPDATE, 0, stream, &0x7fff_ffffu32.to_be_bytes()));
    }
    let (mut tcp, first) = connect_and_send(addr, &bytes).await;
    let closed = read_until_closed(&mut tcp, first, CLOSE_WITHIN).await;
    let Some((received, _)) = closed else { panic!("still open after {count} provoked resets") };
    let frames = parse_frames(&received);
    let resets = frames.iter().filter(|f| f.kind == RST_STREAM).count();
    let goaway = frames.iter().find(|f| f.kind == GOAWAY && f.payload.len() >= 8);
    let goaway =
        goaway.unwrap_or_else(|| panic!("closed without GOAWAY after {resets} RST_STREAM"));
    let code = u32::from_be_bytes(goaway.payload[4..8].try_into().expect("4 bytes"));
    assert_eq!(code, ENHANCE_YOUR_CALM, "GOAWAY {} after {resets} RST_STREAM", code_name(code));
    let debug = String::from_utf8_lossy(&goaway.payload[8..]);
    format!("{resets} RST_STREAM received, then GOAWAY ENHANCE_YOUR_CALM {debug:?}")
}
