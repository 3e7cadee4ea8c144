//! The access-control list for `--acl`: which subject may take which [`Action`] on which logs.
//!
//! The file uses casbin's CSV policy form, one rule a line:
//!
//! ```text
//! # who,      logs,    what
//! p, alice,     orders,  produce   # exactly the log `orders`
//! p, analytics, orders*, consume   # every log whose name starts with `orders`
//! p, ops,       *,       admin     # every log
//! p, root,      *,       *         # every action on every log
//! p, *,         public,  consume   # any authenticated subject
//! g, bob,       writers            # bob has every permission `writers` has
//! ```
//!
//! | line | columns | meaning |
//! |------|---------|---------|
//! | `p` | subject, log pattern, action | grants the action on the matching logs |
//! | `g` | subject, role | the subject has every permission of the role, transitively |
//!
//! A log pattern is `*` (any log), `prefix*` (names starting with `prefix`) or an exact log name;
//! both names and prefixes use the log-name alphabet, and a `*` anywhere else is an error. An
//! action is `produce`, `consume`, `admin`, or `*` for all three. The subject `*` in a `p` line
//! means any authenticated subject; `*` cannot appear in a `g` line (grant with `p, *, ..` instead).
//! A role is just a subject name: roles can be members of roles, and a cycle of roles is harmless
//! (everyone on it gets the union of their grants). Fields are trimmed; blank lines and `#`
//! comments (whole-line or trailing: log names cannot hold `#`) are ignored. Quoting is not
//! supported, so a field holding `"` is an error rather than a silent mismatch. Anything else is an
//! [`AclError`] naming the line and why. Everything is denied unless some rule allows it.
//!
//! We match the policy ourselves instead of using casbin-rs: it brings a scripting engine (rhai)
//! and a general model language to evaluate, where girok needs four fixed columns, two wildcard
//! forms and role inheritance, which fit in this file and are tested here.
//!
//! [`Acl::parse`] resolves roles and wildcards up front, so [`Acl::allows`], called on every RPC,
//! is a hash lookup of the subject plus a scan of that subject's prefix patterns, and allocates
//! nothing.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::logs::name;

/// What an RPC does to a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Appending records, including creating a log by producing to it.
    Produce,
    /// Reading records, offsets and consumer positions.
    Consume,
    /// Creating, updating and deleting logs.
    Admin,
}

impl Action {
    /// This action's bit in an [`Actions`] set.
    const fn bit(self) -> Actions {
        match self {
            Action::Produce => 0b001,
            Action::Consume => 0b010,
            Action::Admin => 0b100,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Produce => "produce",
            Action::Consume => "consume",
            Action::Admin => "admin",
        })
    }
}

/// A set of actions as bits ([`Action::bit`]).
type Actions = u8;

/// Every action: what `*` in the action column grants.
const ALL_ACTIONS: Actions = 0b111;

/// Why a policy could not be parsed. Every variant names the (1-based) line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AclError {
    /// The first column is neither `p` nor `g`.
    #[error("line {line}: unknown line type {kind:?} (expected `p` or `g`)")]
    UnknownLineType { line: usize, kind: String },
    /// A `p` or `g` line with the wrong number of columns.
    #[error(
        "line {line}: a `{kind}` line has {expected} columns after `{kind}`, this one has {found}"
    )]
    Columns { line: usize, kind: &'static str, expected: usize, found: usize },
    /// A column is empty after trimming.
    #[error("line {line}: column {column} is empty")]
    EmptyField { line: usize, column: usize },
    /// A field is quoted, which this parser does not support.
    #[error("line {line}: column {column} holds a quote; fields are not quoted")]
    Quoted { line: usize, column: usize },
    /// The action column is not one of the actions.
    #[error("line {line}: unknown action {action:?} (expected produce, consume, admin or *)")]
    UnknownAction { line: usize, action: String },
    /// The log pattern is malformed.
    #[error("line {line}: bad log pattern {pattern:?}: {why}")]
    BadPattern { line: usize, pattern: String, why: &'static str },
    /// `*` as a member or role in a `g` line.
    #[error("line {line}: `*` cannot be a role or a member of one; grant to `*` with a `p` line")]
    WildcardRole { line: usize },
}

/// A parsed policy, with roles and wildcards resolved for fast [`Acl::allows`] calls.
#[derive(Debug, Default)]
pub(crate) struct Acl {
    /// Each named subject's grants, including those it inherits through roles (but not those of
    /// `*`, which live in `everyone` so a subject the file never names needs no entry).
    subjects: HashMap<Box<str>, Grants>,
    /// The grants of the subject `*`: any authenticated subject has them.
    everyone: Grants,
    /// How many `p` and `g` lines the file had.
    rules: usize,
}

/// The actions one subject may take, by log pattern.
#[derive(Debug, Default, Clone)]
struct Grants {
    /// Actions allowed on every log (`*` patterns).
    everywhere: Actions,
    /// Actions allowed on one exact log name.
    exact: HashMap<Box<str>, Actions>,
    /// Actions allowed on the logs whose names start with a prefix (`prefix*` patterns), one entry
    /// per distinct prefix.
    prefixes: Vec<(Box<str>, Actions)>,
}

/// Which logs a `p` line's pattern matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// `*`: every log.
    Any,
    /// `prefix*`: the logs whose names start with the prefix.
    Prefix(String),
    /// A log name: that log only.
    Exact(String),
}

impl Acl {
    /// Parses a policy in the form the module doc describes.
    pub(crate) fn parse(text: &str) -> Result<Acl, AclError> {
        // Direct grants and role edges as written; resolved once everything is read.
        let mut direct: HashMap<&str, Grants> = HashMap::new();
        let mut roles: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut everyone = Grants::default();
        let mut rules = 0;

        // A byte-order mark, as some editors write, is not part of the first line.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
            if content.is_empty() {
                continue;
            }
            let fields: Vec<&str> = content.split(',').map(str::trim).collect();
            let (kind, columns) = fields.split_first().expect("split yields at least one field");
            for (i, field) in columns.iter().enumerate() {
                let column = i + 1;
                if field.is_empty() {
                    return Err(AclError::EmptyField { line, column });
                }
                if field.contains('"') {
                    return Err(AclError::Quoted { line, column });
                }
            }
            match *kind {
                "p" => {
                    let [subject, pattern, action] = columns else {
                        return Err(columns_error(line, "p", 3, columns.len()));
                    };
                    let pattern = parse_pattern(line, pattern)?;
                    let actions = parse_action(line, action)?;
                    let grants = match *subject {
                        "*" => &mut everyone,
                        named => direct.entry(named).or_default(),
                    };
                    grants.add(&pattern, actions);
                }
                "g" => {
                    let [member, role] = columns else {
                        return Err(columns_error(line, "g", 2, columns.len()));
                    };
                    if *member == "*" || *role == "*" {
                        return Err(AclError::WildcardRole { line });
                    }
                    roles.entry(member).or_default().push(role);
                }
                other => {
                    return Err(AclError::UnknownLineType { line, kind: other.to_string() });
                }
            }
            rules += 1;
        }

        let named: HashSet<&str> = direct.keys().chain(roles.keys()).copied().collect();
        let subjects = named
            .into_iter()
            .map(|subject| {
                let mut grants = Grants::default();
                for role in reachable(subject, &roles) {
                    if let Some(inherited) = direct.get(role) {
                        grants.merge(inherited);
                    }
                }
                (Box::from(subject), grants)
            })
            .collect();
        Ok(Acl { subjects, everyone, rules })
    }

    /// Whether `subject` may take `action` on the log named `log`.
    pub(crate) fn allows(&self, subject: &str, log: &str, action: Action) -> bool {
        let bit = action.bit();
        self.everyone.allow(log, bit)
            || self.subjects.get(subject).is_some_and(|grants| grants.allow(log, bit))
    }

    /// How many rules (`p` and `g` lines) the policy has, for the startup log line.
    pub(crate) fn rules(&self) -> usize {
        self.rules
    }
}

impl Grants {
    /// Adds `actions` on the logs `pattern` matches.
    fn add(&mut self, pattern: &Pattern, actions: Actions) {
        match pattern {
            Pattern::Any => self.everywhere |= actions,
            Pattern::Exact(name) => *self.exact.entry(name.as_str().into()).or_default() |= actions,
            Pattern::Prefix(prefix) => {
                match self.prefixes.iter_mut().find(|(p, _)| **p == **prefix) {
                    Some((_, existing)) => *existing |= actions,
                    None => self.prefixes.push((prefix.as_str().into(), actions)),
                }
            }
        }
    }

    /// Adds everything `other` grants.
    fn merge(&mut self, other: &Grants) {
        self.everywhere |= other.everywhere;
        for (name, actions) in &other.exact {
            self.add(&Pattern::Exact(name.to_string()), *actions);
        }
        for (prefix, actions) in &other.prefixes {
            self.add(&Pattern::Prefix(prefix.to_string()), *actions);
        }
    }

    /// Whether these grants include the action `bit` on `log`.
    fn allow(&self, log: &str, bit: Actions) -> bool {
        self.everywhere & bit != 0
            || self.exact.get(log).is_some_and(|actions| actions & bit != 0)
            || self
                .prefixes
                .iter()
                .any(|(prefix, actions)| actions & bit != 0 && log.starts_with(&**prefix))
    }
}

/// `subject` and every role it reaches through `g` lines, each once (so cycles end).
fn reachable<'a>(subject: &'a str, roles: &HashMap<&'a str, Vec<&'a str>>) -> HashSet<&'a str> {
    let mut seen = HashSet::from([subject]);
    let mut todo = vec![subject];
    while let Some(next) = todo.pop() {
        for role in roles.get(next).into_iter().flatten() {
            if seen.insert(role) {
                todo.push(role);
            }
        }
    }
    seen
}

fn columns_error(line: usize, kind: &'static str, expected: usize, found: usize) -> AclError {
    AclError::Columns { line, kind, expected, found }
}

/// Parses a log pattern: `*`, `prefix*` or an exact name.
fn parse_pattern(line: usize, pattern: &str) -> Result<Pattern, AclError> {
    let bad = |why| AclError::BadPattern { line, pattern: pattern.to_string(), why };
    if pattern == "*" {
        return Ok(Pattern::Any);
    }
    match pattern.strip_suffix('*') {
        Some(prefix) if prefix.contains('*') => Err(bad("`*` may only end a pattern")),
        Some(prefix) => {
            if !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(bad("a prefix may only hold the characters A-Z a-z 0-9 . _ -"));
            }
            Ok(Pattern::Prefix(prefix.to_string()))
        }
        None if pattern.contains('*') => Err(bad("`*` may only end a pattern")),
        None => {
            name::validate(pattern).map_err(bad)?;
            Ok(Pattern::Exact(pattern.to_string()))
        }
    }
}

/// Parses an action column into the set of actions it grants.
fn parse_action(line: usize, action: &str) -> Result<Actions, AclError> {
    Ok(match action {
        "produce" => Action::Produce.bit(),
        "consume" => Action::Consume.bit(),
        "admin" => Action::Admin.bit(),
        "*" => ALL_ACTIONS,
        other => return Err(AclError::UnknownAction { line, action: other.to_string() }),
    })
}

#[cfg(test)]
mod tests {
    use super::Action::{Admin, Consume, Produce};
    use super::*;

    /// The policy from issue 10.
    const ISSUE_POLICY: &str = "\
p, alice, orders, produce
p, analytics, orders*, consume
p, ops, *, admin
p, root, *, *
";

    fn acl(text: &str) -> Acl {
        Acl::parse(text).unwrap_or_else(|e| panic!("parse {text:?}: {e}"))
    }

    fn error(text: &str) -> String {
        Acl::parse(text).expect_err("the policy should be refused").to_string()
    }

    #[test]
    fn the_issue_policy_grants_exactly_what_it_says() {
        let acl = acl(ISSUE_POLICY);
        assert_eq!(acl.rules(), 4);

        assert!(acl.allows("alice", "orders", Produce));
        assert!(!acl.allows("alice", "orders", Consume));
        assert!(!acl.allows("alice", "orders", Admin));
        assert!(!acl.allows("alice", "orders-eu", Produce), "an exact name is not a prefix");

        assert!(acl.allows("analytics", "orders", Consume));
        assert!(acl.allows("analytics", "orders-eu", Consume));
        assert!(!acl.allows("analytics", "orders-eu", Produce));
        assert!(!acl.allows("analytics", "payments", Consume));

        assert!(acl.allows("ops", "anything", Admin));
        assert!(!acl.allows("ops", "anything", Consume));

        for action in [Produce, Consume, Admin] {
            assert!(acl.allows("root", "orders", action));
            assert!(acl.allows("root", "x", action));
            assert!(!acl.allows("mallory", "orders", action), "an unnamed subject gets nothing");
        }
    }

    #[test]
    fn an_empty_policy_denies_everything() {
        let acl = acl("# nothing yet\n\n");
        assert_eq!(acl.rules(), 0);
        assert!(!acl.allows("root", "default", Consume));
    }

    #[test]
    fn subjects_and_log_names_are_case_sensitive() {
        let acl = acl("p, alice, orders, produce");
        assert!(!acl.allows("Alice", "orders", Produce));
        assert!(!acl.allows("alice", "Orders", Produce));
    }

    #[test]
    fn the_subject_star_is_any_authenticated_subject() {
        let acl = acl("p, *, public, consume\np, alice, orders, produce");
        assert!(acl.allows("someone-never-named", "public", Consume));
        assert!(acl.allows("alice", "public", Consume), "named subjects have `*`'s grants too");
        assert!(!acl.allows("someone-never-named", "orders", Produce));
    }

    #[test]
    fn a_prefix_pattern_matches_names_that_start_with_it_including_itself() {
        let acl = acl("p, a, logs.eu-*, consume");
        assert!(acl.allows("a", "logs.eu-", Consume));
        assert!(acl.allows("a", "logs.eu-west", Consume));
        assert!(!acl.allows("a", "logs.us-east", Consume));
        assert!(!acl.allows("a", "logs.eu", Consume));
    }

    #[test]
    fn grants_for_one_subject_accumulate_across_lines() {
        let acl = acl(
            "p, a, orders, produce\np, a, orders, consume\np, a, ord*, admin\np, a, ord*, produce",
        );
        assert!(acl.allows("a", "orders", Produce));
        assert!(acl.allows("a", "orders", Consume));
        assert!(acl.allows("a", "orders", Admin));
        assert!(acl.allows("a", "ordinal", Produce));
        assert!(!acl.allows("a", "ordinal", Consume));
    }

    #[test]
    fn a_member_has_every_permission_of_its_roles_transitively() {
        let acl = acl("\
g, bob, writers
g, writers, staff
p, writers, orders, produce
p, staff, news*, consume
p, bob, bob-private, admin
");
        assert_eq!(acl.rules(), 5);
        assert!(acl.allows("bob", "orders", Produce));
        assert!(acl.allows("bob", "news-today", Consume), "through writers, then staff");
        assert!(acl.allows("bob", "bob-private", Admin));
        assert!(acl.allows("writers", "news", Consume));
        assert!(!acl.allows("writers", "bob-private", Admin), "roles do not inherit from members");
        assert!(!acl.allows("staff", "orders", Produce));
    }

    #[test]
    fn a_subject_may_hold_several_roles() {
        let acl =
            acl("g, c, readers\ng, c, writers\np, readers, x, consume\np, writers, y, produce");
        assert!(acl.allows("c", "x", Consume));
        assert!(acl.allows("c", "y", Produce));
        assert!(!acl.allows("c", "y", Consume));
    }

    #[test]
    fn a_cycle_of_roles_is_harmless_and_shares_its_grants() {
        let ring = acl("g, a, b\ng, b, c\ng, c, a\np, a, x, produce\np, c, y, consume");
        for member in ["a", "b", "c"] {
            assert!(ring.allows(member, "x", Produce), "{member}");
            assert!(ring.allows(member, "y", Consume), "{member}");
            assert!(!ring.allows(member, "y", Admin), "{member}");
        }
        assert!(acl("g, a, a\np, a, x, produce").allows("a", "x", Produce), "a self-loop too");
    }

    #[test]
    fn a_role_with_no_grants_gives_nothing() {
        let acl = acl("g, bob, nobody");
        assert!(!acl.allows("bob", "x", Consume));
    }

    #[test]
    fn fields_are_trimmed_and_comments_and_blank_lines_ignored() {
        let acl = acl(
            "\n   # a whole-line comment\n\t p ,alice ,  orders\t,produce   # why alice writes\n\n",
        );
        assert_eq!(acl.rules(), 1);
        assert!(acl.allows("alice", "orders", Produce));
    }

    #[test]
    fn windows_line_endings_and_a_byte_order_mark_are_tolerated() {
        let acl = acl("\u{feff}p, alice, orders, produce\r\ng, bob, alice\r\n");
        assert_eq!(acl.rules(), 2);
        assert!(acl.allows("bob", "orders", Produce));
    }

    #[test]
    fn action_star_grants_all_three_actions() {
        let acl = acl("p, a, x, *");
        for action in [Produce, Consume, Admin] {
            assert!(acl.allows("a", "x", action));
        }
    }

    #[test]
    fn actions_display_as_the_policy_spells_them() {
        assert_eq!(Produce.to_string(), "produce");
        assert_eq!(Consume.to_string(), "consume");
        assert_eq!(Admin.to_string(), "admin");
    }

    #[test]
    fn an_unknown_line_type_is_an_error_naming_the_line() {
        assert_eq!(
            error("p, a, x, produce\np2, a, x, produce"),
            "line 2: unknown line type \"p2\" (expected `p` or `g`)"
        );
        assert!(error("alice orders produce").starts_with("line 1: unknown line type"));
    }

    #[test]
    fn a_wrong_column_count_is_an_error() {
        assert_eq!(error("p, a, x"), "line 1: a `p` line has 3 columns after `p`, this one has 2");
        assert_eq!(
            error("\np, a, x, produce, extra"),
            "line 2: a `p` line has 3 columns after `p`, this one has 4"
        );
        assert_eq!(error("g, a"), "line 1: a `g` line has 2 columns after `g`, this one has 1");
        assert_eq!(
            error("g, a, b, domain"),
            "line 1: a `g` line has 2 columns after `g`, this one has 3"
        );
    }

    #[test]
    fn an_empty_field_is_an_error() {
        assert_eq!(error("p, , x, produce"), "line 1: column 1 is empty");
        assert_eq!(error("p, a, x,"), "line 1: column 3 is empty");
        assert_eq!(error("g, a,  "), "line 1: column 2 is empty");
    }

    #[test]
    fn an_unknown_action_is_an_error() {
        assert_eq!(
            error("p, a, x, write"),
            "line 1: unknown action \"write\" (expected produce, consume, admin or *)"
        );
        assert!(error("p, a, x, Produce").contains("unknown action"), "actions are lower case");
    }

    #[test]
    fn a_star_anywhere_but_the_end_of_a_pattern_is_an_error() {
        for pattern in ["*orders", "ord*ers", "or*ders*", "**"] {
            let message = error(&format!("p, a, {pattern}, consume"));
            assert!(message.contains("`*` may only end a pattern"), "{pattern}: {message}");
        }
    }

    #[test]
    fn a_pattern_outside_the_log_name_alphabet_is_an_error() {
        assert!(error("p, a, or/ders, consume").starts_with("line 1: bad log pattern \"or/ders\""));
        assert!(error("p, a, or ders*, consume").contains("a prefix may only hold"));
        assert!(error("p, a, .., consume").contains("bad log pattern"));
    }

    #[test]
    fn quoted_fields_are_refused_rather_than_matched_literally() {
        assert_eq!(
            error("p, \"alice\", x, produce"),
            "line 1: column 1 holds a quote; fields are not quoted"
        );
    }

    #[test]
    fn a_star_in_a_role_line_is_an_error() {
        assert!(error("g, *, readers").contains("`*` cannot be a role"));
        assert!(error("g, bob, *").contains("`*` cannot be a role"));
    }
}
