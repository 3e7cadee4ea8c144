//! Seed addresses: how a [`ClusterClient`](super::ClusterClient) is told where a cluster is.
//!
//! A list is comma-separated; each entry is `http://HOST:PORT`, `https://HOST:PORT` or a bare
//! `HOST:PORT`, spaces around entries ignored. Every node of a cluster is reached the same way,
//! so the entries that carry a scheme must agree on it; a bare entry takes that scheme, and when
//! no entry has one, `https` if TLS settings (a CA or a client certificate) were given, else
//! `http`. Addresses that `GetServers` answers (`HOST:PORT`) get the same scheme.

use super::{ClientError, Result};

/// The seeds of a list: their shared scheme and each as `HOST:PORT`, in the order given,
/// duplicates dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Seeds {
    /// `http` or `https`.
    pub(super) scheme: &'static str,
    /// `HOST:PORT` each, never empty.
    pub(super) addrs: Vec<String>,
}

impl Seeds {
    /// Parses `list`; `tls` says whether TLS settings were given, which picks `https` for a list
    /// of bare addresses.
    pub(super) fn parse(list: &str, tls: bool) -> Result<Self> {
        let invalid = |reason: String| ClientError::Address { addr: list.to_owned(), reason };
        let mut scheme = None;
        let mut addrs: Vec<String> = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let (given, rest) = match entry.split_once("://") {
                Some(("http", rest)) => (Some("http"), rest),
                Some(("https", rest)) => (Some("https"), rest),
                Some(_) => {
                    return Err(invalid(format!(
                        "{entry:?}: use http:// (plaintext), https:// (TLS) or a bare HOST:PORT"
                    )));
                }
                None => (None, entry),
            };
            let addr = rest.strip_suffix('/').unwrap_or(rest);
            if addr.is_empty() || addr.contains('/') || !addr.contains(':') {
                return Err(invalid(format!("{entry:?} is not HOST:PORT")));
            }
            match (scheme, given) {
                (Some(known), Some(given)) if known != given => {
                    return Err(invalid(
                        "it mixes http:// and https://: every server of a cluster is reached \
                         the same way"
                            .to_owned(),
                    ));
                }
                (None, Some(given)) => scheme = Some(given),
                _ => {}
            }
            if !addrs.iter().any(|known| known == addr) {
                addrs.push(addr.to_owned());
            }
        }
        if addrs.is_empty() {
            return Err(invalid("no server address given".to_owned()));
        }
        let scheme = scheme.unwrap_or(if tls { "https" } else { "http" });
        Ok(Self { scheme, addrs })
    }
}

#[cfg(test)]
mod tests {
    use super::Seeds;
    use crate::client::ClientError;

    fn parse(list: &str) -> Seeds {
        Seeds::parse(list, false).unwrap_or_else(|err| panic!("{list:?}: {err}"))
    }

    #[test]
    fn a_list_of_urls_keeps_its_order_and_scheme() {
        // The first reachable seed is asked first, so order matters.
        let seeds = parse("http://a:1, http://b:2,http://c:3/");
        assert_eq!(seeds.scheme, "http");
        assert_eq!(seeds.addrs, ["a:1", "b:2", "c:3"]);
        assert_eq!(parse("https://[::1]:8400").addrs, ["[::1]:8400"]);
    }

    #[test]
    fn bare_addresses_take_the_scheme_of_the_others_or_of_the_tls_settings() {
        // One scheme for the whole cluster: a bare entry borrows it.
        let seeds = parse("a:1,https://b:2,c:3");
        assert_eq!((seeds.scheme, seeds.addrs.len()), ("https", 3));
        assert_eq!(parse("a:1,b:2").scheme, "http");
        assert_eq!(Seeds::parse("a:1,b:2", true).expect("parse").scheme, "https");
        assert_eq!(Seeds::parse("http://a:1", true).expect("parse").scheme, "http");
    }

    #[test]
    fn duplicates_and_empty_entries_are_dropped() {
        assert_eq!(parse(" a:1,, http://a:1 ,b:2,").addrs, ["a:1", "b:2"]);
    }

    #[test]
    fn a_list_that_cannot_work_is_refused_saying_why() {
        // Each reason names what to write instead.
        for (list, reason) in [
            ("", "no server address given"),
            (" , ", "no server address given"),
            ("http://a:1,https://b:2", "mixes http:// and https://"),
            ("ftp://a:1", "use http://"),
            ("a", "is not HOST:PORT"),
            ("http://a:1/path", "is not HOST:PORT"),
        ] {
            match Seeds::parse(list, false) {
                Err(ClientError::Address { addr, reason: why }) => {
                    assert_eq!(addr, list);
                    assert!(why.contains(reason), "{list:?}: {why}");
                }
                other => panic!("{list:?}: {other:?}"),
            }
        }
    }
}
