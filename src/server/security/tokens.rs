//! The bearer tokens of `--auth-tokens`, for tools that cannot hold a client certificate.
//!
//! The file has one `TOKEN SUBJECT` pair a line, separated by whitespace:
//!
//! ```text
//! # token                          subject
//! 3f9c2a7e61d04b58a1c9e0f2b7d6a4c1 grafana
//! 8b1e4d0c9a2f47e6b3d5c8a1f0e9d2b7 ci
//! ```
//!
//! Blank lines and lines starting with `#` are ignored; a `#` later in a line is part of a field,
//! since a token may hold one. A token is printable ASCII without spaces (what an `authorization`
//! header can carry); several tokens may name one subject (to rotate them), but a token may appear
//! only once. A malformed line is a [`TokensError`] naming the line, never the token.
//!
//! Tokens are secrets, so this module keeps only their SHA-256 digests, never prints them
//! (`Debug` shows the subjects), and [`Tokens::subject`] compares a presented token with every
//! stored digest in constant time, with no early exit: how long a lookup takes says nothing about
//! which token, or how much of one, matched.

use std::collections::HashMap;
use std::fmt;

use ring::digest::{SHA256, SHA256_OUTPUT_LEN, digest};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// A token's SHA-256 digest.
type Digest = [u8; SHA256_OUTPUT_LEN];

/// The tokens a server accepts, and the subject each one authenticates as.
#[derive(Default)]
pub(crate) struct Tokens {
    /// Each token's digest with its subject, in file order.
    entries: Vec<(Digest, Box<str>)>,
}

/// Why a token file could not be parsed. Every variant names the (1-based) line; none holds a
/// token's text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokensError {
    /// A line with other than two fields.
    #[error("line {line}: expected `TOKEN SUBJECT`, found {found} field{}", if *found == 1 { "" } else { "s" })]
    Fields { line: usize, found: usize },
    /// A token already given on an earlier line.
    #[error("line {line}: the token repeats the one on line {first}")]
    Duplicate { line: usize, first: usize },
    /// A token holding a character an `authorization` header cannot carry.
    #[error("line {line}: the token holds a character other than printable ASCII")]
    NotPrintable { line: usize },
}

impl Tokens {
    /// Parses a token file in the form the module doc describes.
    pub(crate) fn parse(text: &str) -> Result<Tokens, TokensError> {
        let mut entries = Vec::new();
        let mut first_seen: HashMap<Digest, usize> = HashMap::new();
        // A byte-order mark, as some editors write, is not part of the first token.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = content.split_whitespace().collect();
            let [token, subject] = fields[..] else {
                return Err(TokensError::Fields { line, found: fields.len() });
            };
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(TokensError::NotPrintable { line });
            }
            let hashed = hash(token.as_bytes());
            if let Some(&first) = first_seen.get(&hashed) {
                return Err(TokensError::Duplicate { line, first });
            }
            first_seen.insert(hashed, line);
            entries.push((hashed, Box::from(subject)));
        }
        Ok(Tokens { entries })
    }

    /// The subject of the token `presented`, if it is one of these tokens.
    ///
    /// Takes the same time whichever token matches, or none: it hashes `presented` and compares
    /// the digest with every stored one in constant time.
    pub(crate) fn subject(&self, presented: &[u8]) -> Option<&str> {
        let presented = hash(presented);
        let mut matched = Choice::from(0);
        let mut index = 0u64;
        for (i, (stored, _)) in self.entries.iter().enumerate() {
            let equal = stored.ct_eq(&presented);
            index.conditional_assign(&(i as u64), equal);
            matched |= equal;
        }
        // The digests are distinct (duplicates are refused), so at most one entry matched.
        bool::from(matched).then(|| &*self.entries[index as usize].1)
    }

    /// How many tokens there are.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file held no tokens at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subjects: Vec<&str> = self.entries.iter().map(|(_, subject)| &**subject).collect();
        f.debug_struct("Tokens").field("subjects", &subjects).finish_non_exhaustive()
    }
}

fn hash(token: &[u8]) -> Digest {
    digest(&SHA256, token).as_ref().try_into().expect("SHA-256 digests are 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# tokens for the tools
3f9c2a7e61d04b58 grafana

  8b1e4d0c#9a2f47e6\tci   
   # indented comment
0000aaaa ci
";

    fn tokens(text: &str) -> Tokens {
        Tokens::parse(text).unwrap_or_else(|e| panic!("parse: {e}"))
    }

    #[test]
    fn each_token_authenticates_as_its_subject() {
        let tokens = tokens(FILE);
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens.subject(b"3f9c2a7e61d04b58"), Some("grafana"));
        assert_eq!(
            tokens.subject(b"8b1e4d0c#9a2f47e6"),
            Some("ci"),
            "a # inside a token is part of it"
        );
        assert_eq!(tokens.subject(b"0000aaaa"), Some("ci"), "a subject may have several tokens");
    }

    #[test]
    fn windows_line_endings_and_a_byte_order_mark_are_tolerated() {
        let tokens = tokens("\u{feff}first-token a\r\nsecond-token b\r\n");
        assert_eq!(tokens.subject(b"first-token"), Some("a"));
        assert_eq!(tokens.subject(b"second-token"), Some("b"));
    }

    #[test]
    fn a_wrong_token_authenticates_as_no_one() {
        let tokens = tokens(FILE);
        for wrong in [
            &b""[..],
            b"3f9c2a7e61d04b5",
            b"3f9c2a7e61d04b588",
            b"3F9C2A7E61D04B58",
            b"grafana",
            b"\xff",
        ] {
            assert_eq!(tokens.subject(wrong), None, "{wrong:?}");
        }
    }

    #[test]
    fn an_empty_file_accepts_no_token() {
        let tokens = tokens("# none yet\n\n");
        assert!(tokens.is_empty());
        assert_eq!(tokens.subject(b""), None);
        assert_eq!(tokens.subject(b"anything"), None);
    }

    #[test]
    fn the_last_of_many_tokens_is_found_as_well_as_the_first() {
        let text: String = (0..100).map(|i| format!("token-{i} subject-{i}\n")).collect();
        let tokens = tokens(&text);
        assert_eq!(tokens.subject(b"token-0"), Some("subject-0"));
        assert_eq!(tokens.subject(b"token-99"), Some("subject-99"));
        assert_eq!(tokens.subject(b"token-100"), None);
    }

    #[test]
    fn a_line_without_a_subject_is_an_error_naming_the_line_but_not_the_token() {
        let error = Tokens::parse("a b\n\nsecret-token-text\n").unwrap_err();
        assert_eq!(error, TokensError::Fields { line: 3, found: 1 });
        assert_eq!(error.to_string(), "line 3: expected `TOKEN SUBJECT`, found 1 field");
    }

    #[test]
    fn a_line_with_extra_fields_is_an_error_naming_the_line_but_not_the_token() {
        let error = Tokens::parse("secret-token-text ci # trailing comment\n").unwrap_err();
        assert_eq!(error.to_string(), "line 1: expected `TOKEN SUBJECT`, found 5 fields");
        assert!(!error.to_string().contains("secret"));
    }

    #[test]
    fn a_duplicate_token_is_an_error_naming_both_lines_but_not_the_token() {
        let error =
            Tokens::parse("secret-token-text a\nother b\nsecret-token-text c\n").unwrap_err();
        assert_eq!(error, TokensError::Duplicate { line: 3, first: 1 });
        assert_eq!(error.to_string(), "line 3: the token repeats the one on line 1");
    }

    #[test]
    fn a_token_an_authorization_header_cannot_carry_is_an_error() {
        let error = Tokens::parse("sécret ci\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 1: the token holds a character other than printable ASCII"
        );
        assert!(!error.to_string().contains("sécret"));
    }

    #[test]
    fn debug_output_shows_subjects_but_never_tokens() {
        let shown = format!("{:?}", tokens(FILE));
        assert!(shown.contains("grafana") && shown.contains("ci"), "{shown}");
        for token in ["3f9c2a7e61d04b58", "8b1e4d0c", "0000aaaa"] {
            assert!(!shown.contains(token), "{shown}");
        }
    }
}
