//! README, "Securing girok", followed as a newcomer would: the openssl commands run exactly as
//! written, the server starts with the section's policy and environment, and every grpcurl
//! session shown (`$ ` lines, with their continuations) prints exactly what the README says,
//! against the real binary. Needs openssl and grpcurl on PATH (`make test` installs grpcurl).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::binary::{server_command, spawn, wait_with_timeout};

/// How long a step may take.
const STEP: Duration = Duration::from_secs(30);

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

/// The section "Securing girok".
fn section(readme: &str) -> &str {
    let start = readme.find("## Securing girok").expect("a Securing girok section");
    let rest = &readme[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |end| end + 3);
    &rest[..end]
}

/// The body of the first fenced block after `marker`.
fn block_after<'a>(text: &'a str, marker: &str) -> &'a str {
    let at = text.find(marker).unwrap_or_else(|| panic!("{marker} in the README"));
    let open = at + text[at..].find("```").expect("a fenced block");
    let body = open + text[open..].find('\n').expect("a fence line") + 1;
    let close = body + text[body..].find("```").expect("a closing fence");
    &text[body..close]
}

/// Runs `script` with bash in `dir`, failing the test when it fails.
fn bash(dir: &Path, script: &str) -> String {
    let child = Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    let output = wait_with_timeout(child, STEP);
    assert!(
        output.status.success(),
        "{script}\nfailed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `$ ` sessions of the block after the policy: each command (joined across `\` line ends)
/// and the output the README shows for it.
fn sessions(text: &str) -> Vec<(String, String)> {
    let mut sessions: Vec<(String, String)> = Vec::new();
    let mut continuing = false;
    for line in text.lines() {
        if let Some(command) = line.strip_prefix("$ ") {
            sessions.push((command.to_string(), String::new()));
            continuing = command.ends_with('\\');
        } else if let Some((command, output)) = sessions.last_mut() {
            if continuing {
                command.push('\n');
                command.push_str(line);
                continuing = line.ends_with('\\');
            } else {
                output.push_str(line);
                output.push('\n');
            }
        }
    }
    sessions
}

/// `text` without trailing spaces and blank lines (grpcurl prints an empty message as `{`, a line
/// of two spaces, `}`; the README shows `{}`), and with `{` `}` on two lines joined.
/// A record's `timestampMs` differs run to run: only its presence is compared.
fn shape(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.is_empty())
        .map(|line| match line.trim_start().starts_with("\"timestampMs\": ") {
            true => "\"timestampMs\": …",
            false => line,
        })
        .collect();
    lines.join("\n").replace("{\n}", "{}")
}

#[test]
fn the_securing_section_works_as_written() {
    if Command::new("openssl").arg("version").output().is_err() {
        panic!("openssl is not on PATH: the README's certificates are made with it");
    }
    let readme = readme();
    let section = section(&readme);
    let dir = tempfile::tempdir().expect("temp dir");

    bash(dir.path(), block_after(section, "<!-- dev-pki -->"));
    // The policy step, without its last command (`make run`, which the test replaces with the
    // binary under the same environment).
    let acl_block = block_after(section, "<!-- acl -->");
    let (policy, run) = acl_block.split_once("ACL\n").expect("a heredoc ending ACL");
    bash(dir.path(), &format!("{policy}ACL\n"));
    let env: Vec<(String, String)> = run
        .split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(key, value)| (key.to_string(), dir.path().join(value).display().to_string()))
        .collect();
    assert_eq!(env.len(), 4, "the run line sets four variables: {run}");
    assert!(run.trim_end().ends_with("make run"), "{run}");

    let data = dir.path().join("data");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = spawn(server_command(&data, &env), Stdio::null());

    let shown = &section[section.find("<!-- acl -->").unwrap()..];
    let shown = &shown[shown.find("In another shell").expect("the grpcurl sessions")..];
    let shown = block_after(shown, "");
    let sessions = sessions(shown);
    assert_eq!(sessions.len(), 3, "{shown}");
    for (command, expected) in sessions {
        let command = command.replace("127.0.0.1:8400", &server.addr);
        let child = Command::new("bash")
            .arg("-c")
            .arg(format!("{command} 2>&1"))
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("bash");
        let output = wait_with_timeout(child, STEP);
        let printed = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            shape(&printed),
            shape(&expected),
            "`{command}` printed otherwise than the README shows"
        );
    }
}
