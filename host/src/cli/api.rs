//! The client subcommands over the API: `rdev projects`, `rdev commands list|show|cancel|logs`,
//! `rdev keys list|revoke`, `rdev plugins status|reload`, `rdev audit`. Human tables by default,
//! `--output json` for scripts; errors show the API's message and request id.

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::Value;

use super::client::{Client, ClientArgs};

/// How answers are printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(super) enum Output {
    /// Aligned columns.
    #[default]
    Table,
    /// The API's JSON, one document.
    Json,
}

/// What every API subcommand takes.
#[derive(Debug, Args)]
pub(super) struct Common {
    #[command(flatten)]
    client: ClientArgs,
    /// How to print the answer.
    #[arg(long, short = 'o', value_enum, default_value_t, global = true)]
    output: Output,
}

/// `rdev commands …`.
#[derive(Debug, Args)]
pub(super) struct CommandsArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: CommandsCommand,
}

#[derive(Debug, Subcommand)]
pub(super) enum CommandsCommand {
    /// The commands of a project, newest first.
    List {
        /// The project.
        project: String,
        /// Only commands in this state.
        #[arg(long)]
        state: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One command.
    Show {
        /// Its id.
        id: String,
    },
    /// Cancels a queued or running command.
    Cancel {
        /// Its id.
        id: String,
    },
    /// Prints a command's output (stdout to stdout, stderr to stderr).
    Logs {
        /// Its id.
        id: String,
        /// Keeps printing until the command ends, resuming after dropped connections.
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

/// `rdev keys revoke ID`.
#[derive(Debug, Args)]
pub(super) struct RevokeArgs {
    #[command(flatten)]
    common: Common,
    /// The key's id.
    id: String,
}

/// `rdev audit`.
#[derive(Debug, Args)]
pub(super) struct AuditArgs {
    #[command(flatten)]
    common: Common,
    /// Only this action (`command.accepted`, `plugin.rolled_back`…).
    #[arg(long)]
    action: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// How many.
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

/// Runs one API call and prints its answer: `columns` picks what a table shows of the rows at
/// `rows` (a JSON pointer; empty: the answer is one object).
async fn show(common: &Common, method: Method, path: &str, rows: &str, columns: &[(&str, &str)]) -> anyhow::Result<()> {
    let client = Client::new(&common.client)?;
    let answer = client.send(client.request(method, path)).await?;
    match common.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
        Output::Table if rows.is_empty() => {
            for (title, pointer) in columns {
                println!("{title:<12} {}", cell(&answer, pointer));
            }
        }
        Output::Table => {
            let items = answer
                .pointer(rows)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            print_table(&items, columns);
        }
    }
    Ok(())
}

fn cell(row: &Value, pointer: &str) -> String {
    match row.pointer(pointer) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.replace('\n', " "),
        Some(other) => other.to_string(),
    }
}

fn print_table(items: &[Value], columns: &[(&str, &str)]) {
    let cells: Vec<Vec<String>> = items
        .iter()
        .map(|row| columns.iter().map(|(_, p)| cell(row, p)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (title, _))| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([title.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<String>| {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}", w = *w))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(columns.iter().map(|(t, _)| t.to_string()).collect());
    for row in cells {
        line(row);
    }
}

const COMMAND_COLUMNS: [(&str, &str); 6] = [
    ("ID", "/id"),
    ("STATE", "/state"),
    ("EXIT", "/exit_code"),
    ("KIND", "/kind"),
    ("CREATED", "/created_at"),
    ("REASON", "/reason"),
];

/// `rdev projects`.
pub(super) async fn projects(common: Common) -> anyhow::Result<()> {
    let columns = [("NAME", "/name"), ("DESCRIPTION", "/description")];
    show(&common, Method::GET, "/v1/projects", "/projects", &columns).await
}

/// `rdev commands …`.
pub(super) async fn commands(args: CommandsArgs) -> anyhow::Result<()> {
    let common = args.common;
    match args.command {
        CommandsCommand::List { project, state, limit } => {
            let state = state.map(|s| format!("&state={s}")).unwrap_or_default();
            let path = format!("/v1/projects/{project}/commands?limit={limit}{state}");
            show(&common, Method::GET, &path, "/commands", &COMMAND_COLUMNS).await
        }
        CommandsCommand::Show { id } => {
            show(
                &common,
                Method::GET,
                &format!("/v1/commands/{id}"),
                "",
                &COMMAND_COLUMNS,
            )
            .await
        }
        CommandsCommand::Cancel { id } => {
            let path = format!("/v1/commands/{id}/cancel");
            show(&common, Method::POST, &path, "", &COMMAND_COLUMNS).await
        }
        CommandsCommand::Logs { id, follow } => super::run::logs(&Client::new(&common.client)?, &id, follow).await,
    }
}

/// `rdev keys list`.
pub(super) async fn keys(common: Common) -> anyhow::Result<()> {
    let columns = [
        ("ID", "/id"),
        ("NAME", "/name"),
        ("SCOPES", "/scopes"),
        ("PROJECTS", "/projects"),
        ("REVOKED", "/revoked_at"),
    ];
    show(&common, Method::GET, "/v1/keys", "/keys", &columns).await
}

/// `rdev keys revoke ID`.
pub(super) async fn revoke(args: RevokeArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.common.client)?;
    client
        .send(client.request(Method::DELETE, &format!("/v1/keys/{}", args.id)))
        .await?;
    match args.common.output {
        Output::Json => println!("{}", serde_json::json!({ "revoked": args.id })),
        Output::Table => println!("revoked {}", args.id),
    }
    Ok(())
}

/// `rdev plugins status|reload`.
pub(super) async fn plugins(common: Common, reload: bool) -> anyhow::Result<()> {
    if reload {
        let columns = [
            ("LOADED", "/loaded"),
            ("UNCHANGED", "/unchanged"),
            ("FAILED", "/failed"),
        ];
        return show(&common, Method::POST, "/v1/plugins/reload", "", &columns).await;
    }
    let columns = [
        ("NAME", "/name"),
        ("WORLD", "/world"),
        ("STATE", "/state"),
        ("DIGEST", "/digest"),
        ("CALLS", "/calls"),
        ("DENIALS", "/denials"),
        ("TRAPS", "/traps"),
        ("LAST ERROR", "/last_error"),
    ];
    show(&common, Method::GET, "/v1/plugins", "/plugins", &columns).await
}

/// `rdev audit`.
pub(super) async fn audit(args: AuditArgs) -> anyhow::Result<()> {
    let mut path = format!("/v1/audit?limit={}", args.limit);
    if let Some(action) = &args.action {
        path.push_str(&format!("&action={action}"));
    }
    if let Some(since) = &args.since {
        path.push_str(&format!("&since={since}"));
    }
    let columns = [
        ("AT", "/at"),
        ("ACTION", "/action"),
        ("TARGET", "/target"),
        ("OUTCOME", "/outcome"),
        ("KEY", "/key_id"),
    ];
    show(&args.common, Method::GET, &path, "/events", &columns).await
}
