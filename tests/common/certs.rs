//! A test PKI made at test time with rcgen: a CA and the server and client certificates it signs,
//! written as PEM files (keys in PKCS#8) into a temporary directory that lives as long as the
//! [`Pki`].
//!
//! Every `Pki::new()` makes a fresh CA key, so two PKIs never trust each other's certificates (for
//! "a certificate from another CA fails"). Every leaf gets its own key and its own numbered files,
//! so no call overwrites a file an earlier call returned.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, date_time_ymd,
};
use tempfile::TempDir;

/// A certificate authority and the directory its PEM files are written to.
pub struct Pki {
    dir: TempDir,
    /// The CA's certificate, as written to `ca.pem`.
    ca: Certificate,
    /// The CA's name and key, which sign every leaf.
    issuer: Issuer<'static, KeyPair>,
    /// Numbers each leaf's files, so two calls never write the same name.
    issued: AtomicUsize,
}

/// Which extended key usage a leaf certificate carries, and when it is valid.
struct Leaf<'a> {
    cn: &'a str,
    sans: &'a [&'a str],
    usage: ExtendedKeyUsagePurpose,
    /// Also clientAuth: a cluster node's certificate serves both ends of its Raft calls.
    also_client: bool,
    validity: Validity,
}

/// A leaf's validity period.
enum Validity {
    /// rcgen's default, 1975 to 4096: valid whenever a test runs.
    Always,
    /// Only in 2000.
    Past,
    /// Only in 3000.
    Future,
}

impl Pki {
    /// A new CA with CommonName "girok test CA", its certificate written to `ca.pem`.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("create the PKI directory");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.distinguished_name.push(DnType::CommonName, "girok test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("generate the CA key");
        let ca = params.self_signed(&key).expect("self-sign the CA");
        fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write ca.pem");
        let issuer = Issuer::new(params, key);
        Pki { dir, ca, issuer, issued: AtomicUsize::new(0) }
    }

    /// The CA certificate's PEM file.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The CA certificate in DER, for tests that build a trust store in memory.
    pub fn ca_der(&self) -> &[u8] {
        self.ca.der()
    }

    /// A server certificate (CN "localhost"; SANs localhost, 127.0.0.1 and ::1; serverAuth) and
    /// its key: `(cert PEM, key PEM)`.
    pub fn server(&self) -> (PathBuf, PathBuf) {
        self.issue("server", &Leaf::server(Validity::Always))
    }

    /// A client certificate with CommonName `cn` (clientAuth) and its key: `(cert PEM, key PEM)`.
    pub fn client(&self, cn: &str) -> (PathBuf, PathBuf) {
        let leaf = Leaf {
            cn,
            sans: &[],
            usage: ExtendedKeyUsagePurpose::ClientAuth,
            also_client: false,
            validity: Validity::Always,
        };
        self.issue(&format!("client-{}", file_safe(cn)), &leaf)
    }

    /// A cluster node's certificate: [`Pki::server`]'s, also valid as a client certificate
    /// (serverAuth and clientAuth), with CommonName `cn`.
    pub fn node(&self, cn: &str) -> (PathBuf, PathBuf) {
        let leaf = Leaf { cn, also_client: true, ..Leaf::server(Validity::Always) };
        self.issue(&format!("node-{}", file_safe(cn)), &leaf)
    }

    /// A server certificate like [`Pki::server`]'s that was valid only in 2000.
    pub fn expired_server(&self) -> (PathBuf, PathBuf) {
        self.issue("expired-server", &Leaf::server(Validity::Past))
    }

    /// A server certificate like [`Pki::server`]'s that becomes valid only in 3000.
    pub fn future_server(&self) -> (PathBuf, PathBuf) {
        self.issue("future-server", &Leaf::server(Validity::Future))
    }

    /// The directory holding every file this PKI wrote.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Signs a fresh key's certificate and writes `{stem}-{n}.pem` and `{stem}-{n}-key.pem`.
    fn issue(&self, stem: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
        let sans: Vec<String> = leaf.sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("leaf parameters");
        params.distinguished_name.push(DnType::CommonName, leaf.cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![leaf.usage.clone()];
        if leaf.also_client {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.use_authority_key_identifier_extension = true;
        match leaf.validity {
            Validity::Always => {}
            Validity::Past => {
                params.not_before = date_time_ymd(2000, 1, 1);
                params.not_after = date_time_ymd(2001, 1, 1);
            }
            Validity::Future => {
                params.not_before = date_time_ymd(3000, 1, 1);
                params.not_after = date_time_ymd(3001, 1, 1);
            }
        }
        let key = KeyPair::generate().expect("generate a leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign the leaf");

        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        let cert_path = self.dir.path().join(format!("{stem}-{n}.pem"));
        let key_path = self.dir.path().join(format!("{stem}-{n}-key.pem"));
        fs::write(&cert_path, cert.pem()).expect("write the leaf certificate");
        fs::write(&key_path, key.serialize_pem()).expect("write the leaf key");
        (cert_path, key_path)
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

impl Leaf<'static> {
    /// A server leaf for localhost over either IP family.
    fn server(validity: Validity) -> Self {
        Leaf {
            cn: "localhost",
            sans: &["localhost", "127.0.0.1", "::1"],
            usage: ExtendedKeyUsagePurpose::ServerAuth,
            also_client: false,
            validity,
        }
    }
}

/// `cn` with anything but ASCII letters, digits, `-` and `_` replaced, for a file name.
fn file_safe(cn: &str) -> String {
    cn.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect()
}
