//! Loading the TLS files the server is given: its certificate chain and key, and the CAs that
//! sign client certificates; and reading a verified client certificate's Common Name.
//!
//! Each loader checks what would otherwise fail later and less clearly, at the first handshake or
//! never: a key that does not match its certificate, a certificate outside its validity period, a
//! client-CA file holding something that is not a usable CA. Every [`FileError`] names the flag
//! and the file it is about, so a refusal to start (or a SIGHUP reload kept back) says which file
//! to fix.
//!
//! Keys are loaded with rustls's `ring` provider, the only one girok builds (no aws-lc).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::ring;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::certificate::X509Certificate;
use x509_parser::time::ASN1Time;

/// Which of the server's TLS files an error is about; displays as its flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsFile {
    /// `--tls-cert`: the server's certificate chain, leaf first.
    Cert,
    /// `--tls-key`: the server certificate's private key.
    Key,
    /// `--tls-client-ca`: the CA certificates client certificates must chain to.
    ClientCa,
}

impl std::fmt::Display for TlsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsFile::Cert => "--tls-cert",
            TlsFile::Key => "--tls-key",
            TlsFile::ClientCa => "--tls-client-ca",
        })
    }
}

/// Why a TLS file could not be used. Each message names the flag and the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("reading {file} {}: {source}", path.display())]
    Read { file: TlsFile, path: PathBuf, source: std::io::Error },
    /// The file is not well-formed PEM.
    #[error("reading {file} {}: malformed PEM: {source}", path.display())]
    Pem { file: TlsFile, path: PathBuf, source: pem::Error },
    /// The file holds no PEM certificate.
    #[error("reading {file} {}: no certificate found", path.display())]
    NoCertificate { file: TlsFile, path: PathBuf },
    /// The file holds no PEM private key (PKCS#1, PKCS#8 or SEC1; encrypted keys are not read).
    #[error("reading {file} {}: no private key found", path.display())]
    NoKey { file: TlsFile, path: PathBuf },
    /// The key is of a kind the ring provider cannot sign with.
    #[error("reading {file} {}: unusable private key: {source}", path.display())]
    UnusableKey { file: TlsFile, path: PathBuf, source: rustls::Error },
    /// A certificate could not be parsed as X.509, or rustls refused it.
    #[error("reading {file} {}: certificate {index} is not a usable X.509 certificate: {why}", path.display())]
    BadCertificate { file: TlsFile, path: PathBuf, index: usize, why: String },
    /// The private key does not belong to the leaf certificate.
    #[error("{} {} does not match the certificate in {} {}", TlsFile::Key, key.display(), TlsFile::Cert, cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    /// A certificate's validity period ended.
    #[error("{file} {}: certificate {index} expired on {not_after}", path.display())]
    Expired { file: TlsFile, path: PathBuf, index: usize, not_after: String },
    /// A certificate's validity period has not begun.
    #[error("{file} {}: certificate {index} is not valid until {not_before}", path.display())]
    NotYetValid { file: TlsFile, path: PathBuf, index: usize, not_before: String },
    /// A client-CA certificate is not a CA (no `basicConstraints CA:TRUE`), say a leaf given by
    /// mistake.
    #[error("{file} {}: certificate {index} is not a CA certificate", path.display())]
    NotCa { file: TlsFile, path: PathBuf, index: usize },
}

/// Loads the server's certificate chain (leaf first) and private key, checking that the key
/// matches the leaf and that the leaf is valid now.
pub(crate) fn certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, FileError> {
    let chain = certificates(TlsFile::Cert, cert)?;
    check_validity(TlsFile::Cert, cert, 1, &parse(TlsFile::Cert, cert, 1, &chain[0])?)?;

    let private = PrivateKeyDer::from_pem_file(key).map_err(|source| match source {
        pem::Error::NoItemsFound => FileError::NoKey { file: TlsFile::Key, path: key.into() },
        source => pem_error(TlsFile::Key, key, source),
    })?;
    let signer =
        ring::default_provider().key_provider.load_private_key(private).map_err(|source| {
            FileError::UnusableKey { file: TlsFile::Key, path: key.into(), source }
        })?;

    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        // ring's keys all expose their public key, so `Unknown` does not happen; were it to,
        // the handshake would still fail cleanly for a mismatched pair.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(FileError::Mismatch { cert: cert.into(), key: key.into() });
        }
        Err(other) => {
            return Err(FileError::BadCertificate {
                file: TlsFile::Cert,
                path: cert.into(),
                index: 1,
                why: other.to_string(),
            });
        }
    }
    Ok(Arc::new(certified))
}

/// Loads the CA certificates client certificates must chain to. Every certificate in the file
/// must be a CA that is valid now and that rustls accepts as a trust anchor: a file that mixes in
/// anything else is refused rather than half-used.
pub(crate) fn client_roots(ca: &Path) -> Result<Arc<RootCertStore>, FileError> {
    let file = TlsFile::ClientCa;
    let mut roots = RootCertStore::empty();
    for (i, der) in certificates(file, ca)?.into_iter().enumerate() {
        let index = i + 1;
        let parsed = parse(file, ca, index, &der)?;
        check_validity(file, ca, index, &parsed)?;
        if !parsed.is_ca() {
            return Err(FileError::NotCa { file, path: ca.into(), index });
        }
        roots.add(der).map_err(|e| FileError::BadCertificate {
            file,
            path: ca.into(),
            index,
            why: e.to_string(),
        })?;
    }
    Ok(Arc::new(roots))
}

/// The first Common Name in a certificate's subject: a client's subject once mutual TLS has
/// verified its certificate. `None` for a certificate with no (UTF-8) CN, or one that does not
/// parse.
pub(crate) fn common_name(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// Every PEM certificate in `path`, at least one.
fn certificates(file: TlsFile, path: &Path) -> Result<Vec<CertificateDer<'static>>, FileError> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|source| pem_error(file, path, source))?;
    if chain.is_empty() {
        return Err(FileError::NoCertificate { file, path: path.into() });
    }
    Ok(chain)
}

fn pem_error(file: TlsFile, path: &Path, source: pem::Error) -> FileError {
    match source {
        pem::Error::Io(source) => FileError::Read { file, path: path.into(), source },
        source => FileError::Pem { file, path: path.into(), source },
    }
}

/// Parses the `index`th (from 1) certificate of a file.
fn parse<'a>(
    file: TlsFile,
    path: &Path,
    index: usize,
    der: &'a CertificateDer<'_>,
) -> Result<X509Certificate<'a>, FileError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| {
        FileError::BadCertificate { file, path: path.into(), index, why: e.to_string() }
    })?;
    Ok(cert)
}

/// Refuses a certificate outside its validity period.
fn check_validity(
    file: TlsFile,
    path: &Path,
    index: usize,
    cert: &X509Certificate,
) -> Result<(), FileError> {
    let validity = cert.validity();
    let now = ASN1Time::now();
    if now > validity.not_after {
        let not_after = validity.not_after.to_string();
        return Err(FileError::Expired { file, path: path.into(), index, not_after });
    }
    if now < validity.not_before {
        let not_before = validity.not_before.to_string();
        return Err(FileError::NotYetValid { file, path: path.into(), index, not_before });
    }
    Ok(())
}

/// The test PKI the integration tests use, borrowed so these tests make the same certificates.
#[cfg(test)]
#[allow(dead_code, unreachable_pub)] // written for the integration tests, which use all of it
#[path = "../../../tests/common/certs.rs"]
mod test_pki;

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    use super::test_pki::Pki;

    /// The error's message, which must name `path`.
    fn message_naming(error: FileError, path: &Path) -> String {
        let message = error.to_string();
        assert!(
            message.contains(&path.display().to_string()),
            "{message:?} does not name {path:?}"
        );
        message
    }

    #[test]
    fn a_server_certificate_and_its_key_load_as_one_certified_key() {
        let pki = Pki::new();
        let (cert, key) = pki.server();
        let certified = certified_key(&cert, &key).expect("load");
        assert_eq!(certified.cert.len(), 1);
        assert_eq!(common_name(&certified.cert[0]).as_deref(), Some("localhost"));
    }

    #[test]
    fn a_chain_keeps_every_certificate_leaf_first() {
        let pki = Pki::new();
        let (cert, key) = pki.server();
        let chain = pki.dir().join("chain.pem");
        fs::write(
            &chain,
            fs::read_to_string(&cert).unwrap() + &fs::read_to_string(pki.ca()).unwrap(),
        )
        .unwrap();
        let certified = certified_key(&chain, &key).expect("load");
        assert_eq!(certified.cert.len(), 2);
        assert_eq!(common_name(&certified.cert[1]).as_deref(), Some("girok test CA"));
    }

    #[test]
    fn a_missing_certificate_file_is_an_error_naming_it() {
        let pki = Pki::new();
        let (_, key) = pki.server();
        let missing = pki.dir().join("missing.pem");
        let message = message_naming(certified_key(&missing, &key).unwrap_err(), &missing);
        assert!(message.starts_with("reading --tls-cert "), "{message}");
    }

    #[test]
    fn a_missing_key_file_is_an_error_naming_it() {
        let pki = Pki::new();
        let (cert, _) = pki.server();
        let missing = pki.dir().join("missing-key.pem");
        let message = message_naming(certified_key(&cert, &missing).unwrap_err(), &missing);
        assert!(message.starts_with("reading --tls-key "), "{message}");
    }

    #[test]
    fn an_empty_or_garbage_certificate_file_holds_no_certificate() {
        let pki = Pki::new();
        let (_, key) = pki.server();
        for (name, contents) in [("empty.pem", ""), ("garbage.pem", "not a certificate\n")] {
            let path = pki.dir().join(name);
            fs::write(&path, contents).unwrap();
            let message = message_naming(certified_key(&path, &key).unwrap_err(), &path);
            assert!(message.ends_with(": no certificate found"), "{message}");
        }
    }

    #[test]
    fn a_truncated_pem_section_is_malformed() {
        let pki = Pki::new();
        let (cert, key) = pki.server();
        let truncated = pki.dir().join("truncated.pem");
        let text = fs::read_to_string(&cert).unwrap();
        fs::write(&truncated, &text[..text.len() / 2]).unwrap();
        let message = message_naming(certified_key(&truncated, &key).unwrap_err(), &truncated);
        assert!(message.contains("malformed PEM"), "{message}");
    }

    #[test]
    fn a_pem_certificate_that_is_not_x509_is_an_error() {
        let pki = Pki::new();
        let (_, key) = pki.server();
        let bogus = pki.dir().join("bogus.pem");
        fs::write(&bogus, "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n")
            .unwrap();
        let message = message_naming(certified_key(&bogus, &key).unwrap_err(), &bogus);
        assert!(message.contains("not a usable X.509 certificate"), "{message}");
    }

    #[test]
    fn a_key_file_without_a_key_is_an_error_naming_it() {
        let pki = Pki::new();
        let (cert, _) = pki.server();
        // A certificate where the key should be: the commonest mix-up.
        let message = message_naming(certified_key(&cert, &cert).unwrap_err(), &cert);
        assert!(message.starts_with("reading --tls-key "), "{message}");
        assert!(message.ends_with(": no private key found"), "{message}");
    }

    #[test]
    fn a_key_from_another_certificate_is_a_mismatch_naming_both_files() {
        let pki = Pki::new();
        let (cert, _) = pki.server();
        let (_, other_key) = pki.server();
        let error = certified_key(&cert, &other_key).unwrap_err();
        assert!(matches!(error, FileError::Mismatch { .. }), "{error:?}");
        let message = message_naming(error, &cert);
        assert!(message.contains(&other_key.display().to_string()), "{message}");
        assert!(message.contains("does not match"), "{message}");
    }

    #[test]
    fn an_expired_certificate_is_refused_with_its_end_date() {
        let pki = Pki::new();
        let (cert, key) = pki.expired_server();
        let message = message_naming(certified_key(&cert, &key).unwrap_err(), &cert);
        assert!(message.starts_with("--tls-cert "), "{message}");
        assert!(message.contains("expired on Jan  1 00:00:00 2001"), "{message}");
    }

    #[test]
    fn a_certificate_not_yet_valid_is_refused_with_its_start_date() {
        let pki = Pki::new();
        let (cert, key) = pki.future_server();
        let message = message_naming(certified_key(&cert, &key).unwrap_err(), &cert);
        assert!(message.contains("is not valid until Jan  1 00:00:00 3000"), "{message}");
    }

    #[test]
    fn the_client_ca_file_loads_every_certificate_in_it() {
        let (one, two) = (Pki::new(), Pki::new());
        assert_eq!(client_roots(&one.ca()).expect("load").len(), 1);

        let both = one.dir().join("both-cas.pem");
        fs::write(
            &both,
            fs::read_to_string(one.ca()).unwrap() + &fs::read_to_string(two.ca()).unwrap(),
        )
        .unwrap();
        assert_eq!(client_roots(&both).expect("load").len(), 2);
    }

    #[test]
    fn the_loaded_roots_verify_their_own_clients_and_no_one_elses() {
        use rustls::server::WebPkiClientVerifier;

        let (ours, theirs) = (Pki::new(), Pki::new());
        let roots = client_roots(&ours.ca()).expect("load");
        let verifier =
            WebPkiClientVerifier::builder_with_provider(roots, Arc::new(ring::default_provider()))
                .build()
                .expect("a verifier");
        let verify = |pki: &Pki| {
            let der = CertificateDer::from_pem_file(pki.client("alice").0).unwrap();
            verifier.verify_client_cert(&der, &[], rustls::pki_types::UnixTime::now())
        };
        assert!(verify(&ours).is_ok());
        assert!(verify(&theirs).is_err(), "a certificate from another CA");
    }

    #[test]
    fn a_client_ca_file_without_certificates_is_an_error_naming_it() {
        let pki = Pki::new();
        let empty = pki.dir().join("empty-ca.pem");
        fs::write(&empty, "").unwrap();
        let message = message_naming(client_roots(&empty).unwrap_err(), &empty);
        assert!(message.starts_with("reading --tls-client-ca "), "{message}");
        assert!(message.ends_with(": no certificate found"), "{message}");

        let missing = pki.dir().join("missing-ca.pem");
        message_naming(client_roots(&missing).unwrap_err(), &missing);
    }

    #[test]
    fn a_leaf_certificate_given_as_the_client_ca_is_refused() {
        let pki = Pki::new();
        let (client, _) = pki.client("alice");
        let message = message_naming(client_roots(&client).unwrap_err(), &client);
        assert!(message.ends_with("certificate 1 is not a CA certificate"), "{message}");
    }

    #[test]
    fn an_expired_client_ca_is_refused() {
        let pki = Pki::new();
        let expired = expired_ca(pki.dir());
        let message = message_naming(client_roots(&expired).unwrap_err(), &expired);
        assert!(message.contains("certificate 1 expired on"), "{message}");
    }

    #[test]
    fn the_common_name_is_the_client_certificates_subject() {
        let pki = Pki::new();
        let (cert, _) = pki.client("analytics");
        let der = CertificateDer::from_pem_file(&cert).unwrap();
        assert_eq!(common_name(&der).as_deref(), Some("analytics"));
        assert_eq!(common_name(b"not a certificate"), None);
    }

    #[test]
    fn a_certificate_without_a_common_name_has_no_subject() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["example.test".to_string()]).unwrap();
        let mut params = params;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(common_name(cert.der()), None);
    }

    /// Writes a self-signed CA that was valid only in 2000, and returns its path.
    fn expired_ca(dir: &Path) -> PathBuf {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        let cert = params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap();
        let path = dir.join("expired-ca.pem");
        fs::write(&path, cert.pem()).unwrap();
        path
    }
}
