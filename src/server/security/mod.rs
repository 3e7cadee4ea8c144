//! Security: the pieces TLS, authentication and authorization are built from.
//!
//! | file | owns |
//! |------|------|
//! | `files.rs` | loading `--tls-cert`, `--tls-key` and `--tls-client-ca`, each error naming its file; a client certificate's Common Name |
//! | `tokens.rs` | the `--auth-tokens` file: bearer tokens, compared in constant time, never printed |
//! | `acl.rs` | the `--acl` policy: which subject may produce, consume or administer which logs |

// Not yet wired into the server: the accept path, the authentication layer and the flags that
// use these arrive separately. Remove once they do.
#![allow(dead_code)]

pub(crate) mod acl;
pub(crate) mod files;
pub(crate) mod tokens;
