//! The `grpc_server_*` series (the names of go-grpc-prometheus) and the one span per call.
//!
//! The router starts an [`RpcCall`] for each request. It counts the call started, wraps the
//! request and response bodies to count gRPC messages (each message is a 5-byte prefix and its
//! length, so counting needs no decoding), reads the status from the trailers (or the headers
//! of a trailers-only response), and finishes when the response body ends or is dropped: it
//! counts the call handled with its code, observes the whole call's duration (a stream's too,
//! which is why `grpc_type` labels the histogram), and closes the call's span with its status
//! and duration. A call dropped before any status (the client went away) is `Canceled`.
//!
//! Only the methods the server serves get their own labels; any other path counts as
//! `unknown`, so a client cannot make up series.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tonic::Code;
use tonic::codegen::http;
use tracing::field::Empty;

/// `grpc_server_handling_seconds` buckets: 500 µs to about 16 s, doubling (a stream that runs
/// longer lands in `+Inf`).
const HANDLING_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048,
    4.096, 8.192, 16.384,
];

/// What a method is, as labels.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct MethodLabels {
    grpc_type: &'static str,
    grpc_service: &'static str,
    grpc_method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    grpc_type: &'static str,
    grpc_service: &'static str,
    grpc_method: &'static str,
    grpc_code: &'static str,
}

/// The label of `girok_open_streams`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StreamKind {
    kind: &'static str,
}

const UNARY: &str = "unary";
const SERVER_STREAM: &str = "server_stream";
const BIDI_STREAM: &str = "bidi_stream";

/// The methods served (service, method, type, `girok_open_streams` kind), then `unknown` for
/// any other path: an index in it names a method's [`MethodHandles`].
const METHODS: [(&str, &str, &str, Option<&str>); 15] = [
    ("log.v1.Log", "Produce", UNARY, None),
    ("log.v1.Log", "Consume", UNARY, None),
    ("log.v1.Log", "Offsets", UNARY, None),
    ("log.v1.Log", "CreateLog", UNARY, None),
    ("log.v1.Log", "DeleteLog", UNARY, None),
    ("log.v1.Log", "ListLogs", UNARY, None),
    ("log.v1.Log", "UpdateLog", UNARY, None),
    ("log.v1.Log", "GetServers", UNARY, None),
    ("log.v1.Log", "ConsumeStream", SERVER_STREAM, Some("consume")),
    ("log.v1.Log", "ProduceStream", BIDI_STREAM, Some("produce")),
    ("grpc.health.v1.Health", "Check", UNARY, None),
    ("grpc.health.v1.Health", "Watch", SERVER_STREAM, Some("health_watch")),
    (
        "grpc.reflection.v1.ServerReflection",
        "ServerReflectionInfo",
        BIDI_STREAM,
        Some("reflection"),
    ),
    (
        "grpc.reflection.v1alpha.ServerReflection",
        "ServerReflectionInfo",
        BIDI_STREAM,
        Some("reflection"),
    ),
    ("unknown", "unknown", UNARY, None),
];

/// The index in [`METHODS`] of the method at `path`: `unknown` (the last) unless it is served.
fn method_index(path: &str) -> usize {
    let (service, name) = path.trim_start_matches('/').split_once('/').unwrap_or(("", ""));
    METHODS.iter().position(|&(s, m, ..)| s == service && m == name).unwrap_or(METHODS.len() - 1)
}

/// How many status codes there are: [`Code`] as `usize` indexes `MethodHandles::handled`.
const CODES: usize = 17;

/// One method's series, taken from the families at its first use and kept, so that a call
/// hashes no label set. Only series a call has used exist, as with the families alone.
#[derive(Debug)]
struct MethodHandles {
    labels: MethodLabels,
    stream_kind: Option<&'static str>,
    started: OnceLock<Counter>,
    received: OnceLock<Counter>,
    sent: OnceLock<Counter>,
    handling_seconds: OnceLock<Histogram>,
    open_stream: OnceLock<Gauge>,
    /// By code.
    handled: [OnceLock<Counter>; CODES],
}

impl MethodHandles {
    fn new(
        (grpc_service, grpc_method, grpc_type, stream_kind): (
            &'static str,
            &'static str,
            &'static str,
            Option<&'static str>,
        ),
    ) -> Self {
        Self {
            labels: MethodLabels { grpc_type, grpc_service, grpc_method },
            stream_kind,
            started: OnceLock::new(),
            received: OnceLock::new(),
            sent: OnceLock::new(),
            handling_seconds: OnceLock::new(),
            open_stream: OnceLock::new(),
            handled: std::array::from_fn(|_| OnceLock::new()),
        }
    }
}

/// A status code as go-grpc-prometheus spells it.
fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The `grpc_server_*` families, and each method's handles on them. Cloning shares them.
#[derive(Clone, Debug)]
pub(crate) struct RpcMetrics {
    inner: Arc<Families>,
}

#[derive(Debug)]
struct Families {
    started: Family<MethodLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    received: Family<MethodLabels, Counter>,
    sent: Family<MethodLabels, Counter>,
    handling_seconds: Family<MethodLabels, Histogram, fn() -> Histogram>,
    /// Indexed as [`METHODS`].
    methods: Vec<MethodHandles>,
}

impl RpcMetrics {
    /// The families, registered in `registry` (counters without `_total`: the encoder adds it).
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let this = Families {
            started: Family::default(),
            handled: Family::default(),
            received: Family::default(),
            sent: Family::default(),
            handling_seconds: Family::new_with_constructor(|| Histogram::new(HANDLING_BUCKETS)),
            methods: METHODS.into_iter().map(MethodHandles::new).collect(),
        };
        registry.register("grpc_server_started", "RPCs started", this.started.clone());
        registry.register(
            "grpc_server_handled",
            "RPCs completed, by status code",
            this.handled.clone(),
        );
        registry.register(
            "grpc_server_msg_received",
            "Request messages received",
            this.received.clone(),
        );
        registry.register("grpc_server_msg_sent", "Response messages sent", this.sent.clone());
        registry.register(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its status (a stream's whole life)",
            this.handling_seconds.clone(),
        );
        Self { inner: Arc::new(this) }
    }
}

/// One call in flight: counted, timed and traced until it finishes (at the end of its response
/// body, or when dropped).
pub(crate) struct RpcCall {
    rpc: Arc<Families>,
    /// The method's index in [`METHODS`].
    method: usize,
    started: Instant,
    received: Counter,
    sent: Counter,
    /// `girok_open_streams{kind}` of a streaming call, decremented when it finishes.
    open_stream: Option<Gauge>,
    span: tracing::Span,
    code: Option<Code>,
    finished: bool,
}

impl RpcCall {
    pub(super) fn start(
        rpc: &RpcMetrics,
        open_streams: &Family<StreamKind, Gauge>,
        path: &str,
        peer: Option<SocketAddr>,
    ) -> Self {
        let families = &rpc.inner;
        let method = method_index(path);
        let handles = &families.methods[method];
        let labels = handles.labels;
        let resolve = |cell: &OnceLock<Counter>, family: &Family<MethodLabels, Counter>| {
            cell.get_or_init(|| family.get_or_create(&labels).clone()).clone()
        };
        resolve(&handles.started, &families.started).inc();
        let open_stream = handles.stream_kind.map(|kind| {
            let gauge = handles
                .open_stream
                .get_or_init(|| open_streams.get_or_create(&StreamKind { kind }).clone());
            gauge.inc();
            gauge.clone()
        });
        let span = tracing::info_span!(
            "rpc",
            method = path,
            peer = peer.map(tracing::field::display),
            log = Empty,
            status = Empty,
            duration_ms = Empty,
        );
        Self {
            rpc: Arc::clone(families),
            method,
            started: Instant::now(),
            received: resolve(&handles.received, &families.received),
            sent: resolve(&handles.sent, &families.sent),
            open_stream,
            span,
            code: None,
            finished: false,
        }
    }

    /// The call's span: the handler runs inside it.
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The request body, counting the messages received.
    pub(crate) fn request_body<B>(&self, body: B) -> Counted<B, Counter> {
        Counted {
            inner: body,
            messages: Messages::default(),
            on: self.received.clone(),
            span: self.span.clone(),
        }
    }

    /// The response, whose body finishes this call when it ends or is dropped.
    pub(crate) fn respond(
        mut self,
        response: http::Response<tonic::body::Body>,
    ) -> http::Response<tonic::body::Body> {
        // A trailers-only response (an error before any message) carries its status here.
        self.note_status(response.headers());
        let span = self.span.clone();
        response.map(|body| {
            let messages = Messages::default();
            tonic::body::Body::new(Counted { inner: body, messages, on: self, span })
        })
    }

    fn note_status(&mut self, headers: &http::HeaderMap) {
        if let Some(status) = headers.get("grpc-status") {
            self.code = Some(Code::from_bytes(status.as_bytes()));
        }
    }

    fn finish(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let took = self.started.elapsed();
        let (families, handles) = (&self.rpc, &self.rpc.methods[self.method]);
        let status = self.code.unwrap_or(Code::Cancelled);
        let code = code_label(status);
        let handled = handles.handled[status as usize].get_or_init(|| {
            let MethodLabels { grpc_type, grpc_service, grpc_method } = handles.labels;
            let labels = HandledLabels { grpc_type, grpc_service, grpc_method, grpc_code: code };
            families.handled.get_or_create(&labels).clone()
        });
        handled.inc();
        let histogram = handles
            .handling_seconds
            .get_or_init(|| families.handling_seconds.get_or_create(&handles.labels).clone());
        histogram.observe(took.as_secs_f64());
        if let Some(gauge) = &self.open_stream {
            gauge.dec();
        }
        let duration_ms = took.as_secs_f64() * 1000.0;
        self.span.record("status", code).record("duration_ms", duration_ms);
        let _in_span = self.span.enter();
        if self.code.is_some_and(server_failed) {
            tracing::info!(status = code, duration_ms, "rpc finished");
        } else {
            tracing::debug!(status = code, duration_ms, "rpc finished");
        }
    }
}

/// Whether a call that ended with `code` failed on the server's side (a line at `info`), rather
/// than succeeding or being refused for what the client asked or did (a line at `debug`, so
/// that a consumer reading past the end or a client going away cannot flood the log).
fn server_failed(code: Code) -> bool {
    match code {
        Code::Unknown
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Unimplemented
        | Code::Internal
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::Ok
        | Code::Cancelled
        | Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unauthenticated => false,
    }
}

impl Drop for RpcCall {
    fn drop(&mut self) {
        self.finish();
    }
}

/// What a [`Counted`] body reports to.
pub(crate) trait OnFrame {
    /// `count` more whole messages began.
    fn messages(&mut self, count: u64);
    /// The trailers arrived.
    fn trailers(&mut self, _trailers: &http::HeaderMap) {}
    /// The body ended.
    fn ended(&mut self) {}
}

impl OnFrame for Counter {
    fn messages(&mut self, count: u64) {
        self.inc_by(count);
    }
}

impl OnFrame for RpcCall {
    fn messages(&mut self, count: u64) {
        self.sent.inc_by(count);
    }

    fn trailers(&mut self, trailers: &http::HeaderMap) {
        self.note_status(trailers);
        self.finish();
    }

    fn ended(&mut self) {
        if self.code.is_none() {
            self.code = Some(Code::Unknown);
        }
        self.finish();
    }
}

/// Counts the gRPC messages in a stream of bytes: each is a flag byte, a 4-byte big-endian
/// length, and that many bytes.
#[derive(Debug, Default)]
struct Messages {
    /// Bytes of the current message still to come.
    remaining: u64,
    /// The prefix read so far.
    prefix: [u8; 5],
    prefix_len: usize,
}

impl Messages {
    /// How many messages begin in `data`.
    fn feed(&mut self, mut data: &[u8]) -> u64 {
        let mut begun = 0;
        while !data.is_empty() {
            if self.remaining > 0 {
                let skip = data.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                self.remaining -= skip as u64;
                data = &data[skip..];
                continue;
            }
            self.prefix[self.prefix_len] = data[0];
            self.prefix_len += 1;
            data = &data[1..];
            if self.prefix_len == self.prefix.len() {
                let [_, a, b, c, d] = self.prefix;
                self.remaining = u64::from(u32::from_be_bytes([a, b, c, d]));
                self.prefix_len = 0;
                begun += 1;
            }
        }
        begun
    }
}

/// A body passed through unchanged, its messages and end reported to `on`. It is polled inside
/// the call's span, so what a stream logs as it runs carries the call's fields.
pub(crate) struct Counted<B, O> {
    inner: B,
    messages: Messages,
    on: O,
    span: tracing::Span,
}

impl<B, O> Body for Counted<B, O>
where
    B: Body<Data = Bytes> + Unpin,
    O: OnFrame + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let _in_span = this.span.enter();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let begun = this.messages.feed(data);
                    if begun > 0 {
                        this.on.messages(begun);
                    }
                } else if let Some(trailers) = frame.trailers_ref() {
                    this.on.trailers(trailers);
                }
            }
            Poll::Ready(None) => this.on.ended(),
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_methods_series_are_taken_from_the_families_once_and_counted_there() {
        // The first call of a method takes its series from the families; later calls use the
        // handles kept (no label set hashed), and every count lands in the registered families,
        // code by code; a path not served counts as `unknown`.
        let mut registry = Registry::default();
        let rpc = RpcMetrics::register(&mut registry);
        let streams = Family::default();
        for (path, code) in [
            ("/log.v1.Log/Consume", Code::Ok),
            ("/log.v1.Log/Consume", Code::Ok),
            ("/log.v1.Log/Consume", Code::NotFound),
            ("/no.such/Method", Code::Unimplemented),
        ] {
            let mut call = RpcCall::start(&rpc, &streams, path, None);
            call.code = Some(code);
        }
        let families = &rpc.inner;
        let consume = &families.methods[method_index("/log.v1.Log/Consume")];
        assert_eq!(consume.labels.grpc_method, "Consume");
        assert_eq!(consume.started.get().map(Counter::get), Some(3));
        assert_eq!(families.started.get_or_create(&consume.labels).get(), 3);
        let handled = |labels: MethodLabels, grpc_code| {
            let MethodLabels { grpc_type, grpc_service, grpc_method } = labels;
            families
                .handled
                .get_or_create(&HandledLabels { grpc_type, grpc_service, grpc_method, grpc_code })
                .get()
        };
        assert_eq!((handled(consume.labels, "OK"), handled(consume.labels, "NotFound")), (2, 1));
        assert!(consume.handled[Code::Internal as usize].get().is_none(), "no call, no series");
        let unknown = &families.methods[METHODS.len() - 1];
        assert_eq!(method_index("/no.such/Method"), METHODS.len() - 1);
        assert_eq!(handled(unknown.labels, "Unimplemented"), 1);
    }

    #[test]
    fn messages_are_counted_across_any_split_of_their_bytes() {
        let mut wire = Vec::new();
        for value in [&b"abc"[..], b"", b"0123456789"] {
            wire.push(0);
            wire.extend_from_slice(&(value.len() as u32).to_be_bytes());
            wire.extend_from_slice(value);
        }
        for split in 0..wire.len() {
            let mut messages = Messages::default();
            let (a, b) = wire.split_at(split);
            assert_eq!(messages.feed(a) + messages.feed(b), 3, "split at {split}");
        }
    }
}
