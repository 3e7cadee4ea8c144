//! `girok servers` and `girok cluster add|remove`: a cluster's members, and changing them.
//!
//! `servers` prints a header line and one line per server, sorted by id, columns separated by
//! at least two spaces and no cell holding a space (as `logs list` does):
//!
//! | column | what |
//! |--------|------|
//! | `ID` | the node's id |
//! | `ADDRESS` | where it serves, `HOST:PORT` |
//! | `LEADER` | `yes` for the leader, else `no` |
//! | `VOTER` | `yes` for a voter, `no` for a learner still catching up |
//!
//! With `--json`, one object per server: `{"id", "addr", "is_leader", "voter"}`. A single
//! server prints itself, as leader and voter.
//!
//! `cluster add ID HOST:PORT` and `cluster remove ID` go to the leader and print nothing; a
//! server outside a cluster refuses them (`FAILED_PRECONDITION NOT_A_CLUSTER`).

use clap::Subcommand;
use girok::client::{ClusterClient, ServerInfo};
use serde::Serialize;

use crate::{CliError, Deadline, out};

/// A `girok cluster` subcommand.
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Adds the node ID, serving at HOST:PORT (started with --join), to the cluster: it catches
    /// up as a learner, then votes. Ids are never reused.
    Add {
        /// The new node's id (its --node-id).
        id: u64,
        /// Where it serves, as HOST:PORT. (Not `addr`: that would clash with the global
        /// --addr.)
        #[arg(value_name = "HOST:PORT")]
        rpc_addr: String,
    },
    /// Removes the node ID from the cluster.
    Remove {
        /// The node's id.
        id: u64,
    },
}

/// `girok servers`.
pub(crate) async fn list(
    client: &ClusterClient,
    deadline: &Deadline,
    json: bool,
) -> Result<(), CliError> {
    let servers = deadline.call(client.servers()).await?;
    if json {
        servers.iter().try_for_each(|server| out::line(json_line(server)))
    } else {
        out::bytes(render(&servers).as_bytes())
    }
}

/// `girok cluster add|remove`.
pub(crate) async fn change(
    client: &ClusterClient,
    deadline: &Deadline,
    command: ClusterCommand,
) -> Result<(), CliError> {
    match command {
        ClusterCommand::Add { id, rpc_addr } => {
            deadline.call(client.add_server(id, rpc_addr)).await
        }
        ClusterCommand::Remove { id } => deadline.call(client.remove_server(id)).await,
    }
}

/// One server of `servers --json`.
#[derive(Serialize)]
struct ServerLine<'a> {
    id: u64,
    addr: &'a str,
    is_leader: bool,
    voter: bool,
}

fn json_line(server: &ServerInfo) -> String {
    let line = ServerLine {
        id: server.id,
        addr: &server.addr,
        is_leader: server.is_leader,
        voter: server.voter,
    };
    // Integers, a string and booleans: serialising cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}

const HEADER: [&str; 4] = ["ID", "ADDRESS", "LEADER", "VOTER"];

/// The table of `servers`, header first, each line ending in `\n`.
fn render(servers: &[ServerInfo]) -> String {
    let yes = |flag: bool| if flag { "yes" } else { "no" }.to_string();
    let rows = servers.iter().map(|server| {
        [server.id.to_string(), server.addr.clone(), yes(server.is_leader), yes(server.voter)]
    });
    crate::table::aligned(HEADER, rows)
}

#[cfg(test)]
mod tests {
    use girok::client::ServerInfo;

    use super::{json_line, render};

    fn server(id: u64, addr: &str, is_leader: bool, voter: bool) -> ServerInfo {
        ServerInfo { id, addr: addr.into(), is_leader, voter }
    }

    #[test]
    fn the_table_aligns_its_columns_and_says_yes_or_no() {
        // Every line has as many whitespace-separated cells as the header, for awk.
        let servers = [
            server(1, "10.0.0.1:8400", false, true),
            server(2, "10.0.0.2:8400", true, true),
            server(13, "node-13.internal:8400", false, false),
        ];
        assert_eq!(
            render(&servers),
            "ID  ADDRESS                LEADER  VOTER\n\
             1   10.0.0.1:8400          no      yes\n\
             2   10.0.0.2:8400          yes     yes\n\
             13  node-13.internal:8400  no      no\n"
        );
    }

    #[test]
    fn json_has_exactly_the_documented_fields() {
        assert_eq!(
            json_line(&server(2, "10.0.0.2:8400", true, false)),
            r#"{"id":2,"addr":"10.0.0.2:8400","is_leader":true,"voter":false}"#
        );
    }
}
