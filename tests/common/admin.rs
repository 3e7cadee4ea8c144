//! The admin listener from a test: a `girok-server` started with `--admin-addr 127.0.0.1:0`, a
//! plain HTTP/1.1 GET over a `TcpStream`, and a small parser of the text format.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tempfile::TempDir;

use super::binary::{ServerProcess, spawn_server};

/// A server with its admin listener on a free port, and its data directory.
pub struct Admin {
    /// The server.
    pub server: ServerProcess,
    _data: TempDir,
}

impl Admin {
    /// Starts one with `env` as extra settings (blocks briefly: call it from a multi-threaded
    /// runtime).
    pub fn start(env: &[(&str, &str)]) -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let mut env = env.to_vec();
        env.push(("GIROK_ADMIN_ADDR", "127.0.0.1:0"));
        let server = tokio::task::block_in_place(|| spawn_server(data.path(), &env));
        assert!(server.admin_addr.is_some(), "no `admin listening on` line");
        Self { server, _data: data }
    }

    /// GETs `path` from the admin listener.
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.server.admin_addr.as_deref().expect("an admin address"), path)
    }

    /// GETs `/metrics` and parses it.
    pub fn scrape(&self) -> Vec<Sample> {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "{body}");
        assert!(body.ends_with("# EOF\n"), "not OpenMetrics text: {body}");
        parse(&body)
    }

    /// A typed gRPC client of the server.
    pub async fn client(&self) -> girok::client::Client {
        girok::client::Client::connect(self.server.url()).await.expect("connect")
    }
}

/// One GET over a fresh HTTP/1.1 connection: the status and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).expect("connect to the admin listener");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).expect("read the response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a header block");
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status");
    (status, body.to_string())
}

/// One sample of the text format: `name{key="value",...} value`.
#[derive(Debug)]
pub struct Sample {
    /// The series name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// The samples of a text-format scrape (comment lines skipped). Label values here never hold
/// a comma, quote or brace, which keeps the parser small.
pub fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|line| !line.starts_with('#') && !line.is_empty()) {
        let (series, value) = line.rsplit_once(' ').expect("a value");
        let value = value.parse().unwrap_or_else(|_| panic!("a number in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let pairs = rest.strip_suffix('}').expect("closed labels");
                let labels = pairs
                    .split(',')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, value) = pair.split_once('=').expect("key=value");
                        (key.to_string(), value.trim_matches('"').to_string())
                    })
                    .collect();
                (name, labels)
            }
        };
        samples.push(Sample { name: name.to_string(), labels, value });
    }
    samples
}

/// The value of the one sample named `name` whose labels include `labels`, summed if several.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}
