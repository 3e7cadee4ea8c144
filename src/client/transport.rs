//! [`Transport`]: what every call of a [`Client`](super::Client) goes through: tonic's
//! [`Channel`] and, when the client was given one, a bearer token put on every request as
//! `authorization: Bearer TOKEN`, streams included (a request is one call, unary or streaming).
//!
//! Why a service of its own rather than tonic's interceptor: an interceptor would reach every
//! call too, but it rebuilds each request's headers as a `MetadataMap` and back, and its type
//! (`InterceptedService<Channel, F>`) would leak into [`Client::inner`](super::Client::inner).
//! This is one named type, `LogClient<Transport>`, that inserts one header.
//!
//! The token never shows: the header value is marked sensitive (so `http`'s `Debug` prints
//! `Sensitive`), and [`Transport`]'s own `Debug` says only whether there is one.

use std::fmt;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::header::AUTHORIZATION;
use tonic::codegen::http::{HeaderValue, Request, Response};
use tonic::transport::Channel;
use tonic::transport::channel::ResponseFuture;

/// A [`Channel`] that adds the client's bearer token, if any, to every request. Cheap to
/// clone; clones share the HTTP/2 connection.
#[derive(Clone)]
pub struct Transport {
    channel: Channel,
    /// `Bearer TOKEN`, already checked to be a valid header value and marked sensitive.
    authorization: Option<HeaderValue>,
}

impl Transport {
    /// `channel`, adding `authorization` (from [`bearer`]) to every request when there is one.
    pub(super) fn new(channel: Channel, authorization: Option<HeaderValue>) -> Self {
        Self { channel, authorization }
    }
}

/// `Bearer TOKEN` as a sensitive header value; `None` if the token cannot be one (it is empty,
/// or holds a character outside visible ASCII).
pub(super) fn bearer(token: &str) -> Option<HeaderValue> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let mut value = HeaderValue::try_from(format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

impl Service<Request<Body>> for Transport {
    type Response = Response<Body>;
    type Error = tonic::transport::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::poll_ready(&mut self.channel, cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        if let Some(authorization) = &self.authorization {
            request.headers_mut().insert(AUTHORIZATION, authorization.clone());
        }
        Service::call(&mut self.channel, request)
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("channel", &self.channel)
            .field("token", &self.authorization.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use tonic::transport::Endpoint;

    use super::{Transport, bearer};

    #[tokio::test]
    async fn the_token_never_shows_in_debug_output() {
        // A client's Debug output ends up in logs and panics; the token must not.
        let channel = Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
        let authorization = bearer("s3cret-t0ken").expect("a valid token");
        let printed = format!("{authorization:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        let transport = Transport::new(channel, Some(authorization));
        let printed = format!("{transport:?}");
        assert!(!printed.contains("s3cret") && printed.contains("<redacted>"), "{printed}");
    }

    #[test]
    fn a_token_that_cannot_be_a_header_value_is_refused() {
        // Spaces, control characters and non-ASCII would be rejected or mangled on the wire.
        for token in ["", "two words", "line\nbreak", "naïve"] {
            assert!(bearer(token).is_none(), "{token:?}");
        }
        let value = bearer("abc.DEF-123_~+/=").expect("a valid token");
        assert_eq!(value.to_str().expect("ASCII"), "Bearer abc.DEF-123_~+/=");
    }
}
