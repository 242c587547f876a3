//! `cicd-agents chart set-image`: the chart update step on its own, on a local values file or
//! in a chart repository (clone, edit, commit, push).

use std::path::PathBuf;
use std::process::ExitCode;

use cicd_agents_pipeline::definition::TokenSource;
use cicd_agents_pipeline::git::{Author, CommitVars, MessageTemplate, WriteBackConfig};
use cicd_agents_pipeline::run::{set_local, ChartUpdate, ValueChange, ValuesUpdate};
use cicd_agents_pipeline::values::{parse_tag_ref, Digest, KeyPath, Segment};
use clap::{Args, Subcommand};

use crate::output::{print_json, Format};

#[derive(Debug, Subcommand)]
pub enum ChartCommand {
    /// Set values (image tag, repository, digest) in a values file, keeping its formatting.
    SetImage(Box<SetImageArgs>),
}

#[derive(Debug, Args)]
pub struct SetImageArgs {
    /// The values file: a local path, or with --repo a path inside the repository.
    #[arg(long)]
    file: PathBuf,
    /// Key path to set, e.g. image.tag (repeatable; pairs with --value in order).
    #[arg(long = "key", value_name = "KEY")]
    keys: Vec<String>,
    /// Value for the --key at the same position.
    #[arg(long = "value", value_name = "VALUE")]
    values: Vec<String>,
    /// KEY=VALUE pair (repeatable), e.g. --set image.tag=1.2.3.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Chart repository URL (https://…; http:// only on loopback). Without it, --file is local.
    #[arg(long)]
    repo: Option<String>,
    /// Branch to update [default: main].
    #[arg(long, requires = "repo", value_parser = branch_name)]
    branch: Option<String>,
    /// Push to this branch instead (created from --branch if missing).
    #[arg(long = "push-branch", requires = "repo", value_parser = branch_name)]
    push_branch: Option<String>,
    /// Environment variable holding the git token.
    #[arg(long = "token-env", requires = "repo", conflicts_with = "token_file")]
    token_env: Option<String>,
    /// File holding the git token.
    #[arg(long = "token-file", requires = "repo")]
    token_file: Option<PathBuf>,
    /// Basic-auth user name sent with the token.
    #[arg(long, requires = "repo")]
    username: Option<String>,
    /// Commit author name.
    #[arg(long = "author-name", requires = "repo", default_value = "cicd-agents")]
    author_name: String,
    /// Commit author e-mail.
    #[arg(
        long = "author-email",
        requires = "repo",
        default_value = "cicd-agents@localhost"
    )]
    author_email: String,
    /// Commit message template ({image}, {old_tag}, {new_tag}, {digest}, {source_commit}, {files}).
    #[arg(long, requires = "repo")]
    message: Option<String>,
    /// Image name for {image} in the message.
    #[arg(long, requires = "repo")]
    image: Option<String>,
    /// Image digest (sha256:…) for {digest} in the message, e.g. the build's output.
    #[arg(long, requires = "repo")]
    digest: Option<String>,
    /// Commit of the application source (40 or 64 hex digits) for {source_commit} in the
    /// message, e.g. the build step's output.
    #[arg(long = "source-commit", requires = "repo")]
    source_commit: Option<String>,
    /// How long to keep re-applying the edit when the branch moved (other writers pushed
    /// first), e.g. 5m; then give up saying how many attempts were made [default: 2m].
    #[arg(
        long = "retry-timeout",
        value_name = "DURATION",
        requires = "repo",
        value_parser = crate::duration::parse_positive_duration
    )]
    retry_timeout: Option<std::time::Duration>,
    /// Clone and edit, print the diff; commit and push nothing.
    #[arg(long = "dry-run", requires = "repo")]
    dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub async fn run(command: ChartCommand) -> anyhow::Result<ExitCode> {
    match command {
        ChartCommand::SetImage(args) => set_image(*args).await,
    }
}

fn pairs(args: &SetImageArgs) -> anyhow::Result<Vec<(String, String)>> {
    if args.keys.len() != args.values.len() {
        return Err(crate::exit::usage(format!(
            "{} --key but {} --value; give one --value per --key (or use --set KEY=VALUE)",
            args.keys.len(),
            args.values.len()
        )));
    }
    let mut out: Vec<(String, String)> = args
        .keys
        .iter()
        .cloned()
        .zip(args.values.iter().cloned())
        .collect();
    for s in &args.set {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| crate::exit::usage(format!("--set {s:?}: expected KEY=VALUE")))?;
        out.push((k.to_string(), v.to_string()));
    }
    if out.is_empty() {
        return Err(crate::exit::usage(
            "nothing to set: give --key K --value V or --set K=V",
        ));
    }
    for (key, value) in &out {
        if is_tag_key(key) {
            parse_tag_ref(value).map_err(|err| {
                crate::exit::usage(format!(
                    "--value for {key}: {err} (a key ending in `tag` takes an image tag, or tag@sha256:…)"
                ))
            })?;
        }
    }
    Ok(out)
}

/// Whether the value at `key` is an image tag (the Helm convention `image.tag`): its last
/// segment is `tag`. Such values are checked with the image tag rule before anything is
/// written, so that `1.0;id` or `-x` never reaches a values file or a commit.
fn is_tag_key(key: &str) -> bool {
    KeyPath::parse(key)
        .ok()
        .and_then(|path| match path.last() {
            Some(Segment::Key(last)) => Some(last.eq_ignore_ascii_case("tag")),
            _ => None,
        })
        .unwrap_or(false)
}

fn print_changes(changes: &[ValueChange]) {
    for c in changes {
        if c.changed {
            println!("{} {}: {} -> {}", c.file, c.key, c.old, c.new);
        } else {
            println!("{} {}: {} (unchanged)", c.file, c.key, c.new);
        }
    }
}

async fn set_image(args: SetImageArgs) -> anyhow::Result<ExitCode> {
    let pairs = pairs(&args)?;
    let Some(repo) = args.repo.clone() else {
        let edit = set_local(&args.file, &pairs)?;
        match args.format {
            Format::Json => print_json(&edit)?,
            Format::Text => {
                print_changes(&edit.changes);
                if !edit.changed {
                    println!("no change");
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    };
    let mut config = WriteBackConfig::new(
        repo,
        args.branch.clone().unwrap_or_else(|| "main".into()),
        Author {
            name: args.author_name.clone(),
            email: args.author_email.clone(),
        },
    );
    config.push_branch = args.push_branch.clone();
    if let Some(timeout) = args.retry_timeout {
        config.retry.timeout = timeout;
    }
    let token = match (&args.token_env, &args.token_file) {
        (Some(var), _) => Some(TokenSource::Env(var.clone())),
        (None, Some(path)) => Some(TokenSource::File(path.clone())),
        (None, None) => None,
    };
    config.auth = token
        .map(|t| t.load(args.username.as_deref()))
        .transpose()?;
    if let Some(message) = &args.message {
        config.message = MessageTemplate::parse(message)?;
    }
    let digest = args
        .digest
        .as_deref()
        .map(Digest::new)
        .transpose()
        .map_err(|err| crate::exit::usage(format!("--digest: {err}")))?;
    let source_commit = match args.source_commit.as_deref() {
        None => String::new(),
        Some(commit)
            if matches!(commit.len(), 40 | 64)
                && commit
                    .bytes()
                    .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            commit.to_string()
        }
        Some(commit) => {
            return Err(crate::exit::usage(format!(
                "--source-commit: {commit:?} is not a commit id (40 or 64 lower-case hex digits)"
            )))
        }
    };
    let edits = pairs
        .iter()
        .map(|(k, v)| Ok((KeyPath::parse(k)?, v.clone())))
        .collect::<Result<Vec<_>, cicd_agents_pipeline::error::ValuesError>>()?;
    let update = ChartUpdate {
        config,
        updates: vec![ValuesUpdate {
            file: args.file.clone(),
            edits,
        }],
        vars: CommitVars {
            image: args.image.clone().unwrap_or_default(),
            digest: digest.map(|d| d.to_string()).unwrap_or_default(),
            source_commit,
            ..CommitVars::default()
        },
    };
    let dry_run = args.dry_run;
    let outcome = tokio::task::spawn_blocking(move || {
        if dry_run {
            update.preview()
        } else {
            update.apply(&mut |_| {})
        }
    })
    .await??;
    match args.format {
        Format::Json => print_json(&outcome)?,
        Format::Text => {
            print_changes(&outcome.changes);
            println!("{}", outcome.summary());
            if let Some(diff) = &outcome.diff {
                print!("{diff}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A branch by git's rules ([`cicd_agents_types::BranchName`]), refused by clap (exit 2, naming the flag).
fn branch_name(text: &str) -> Result<String, cicd_agents_types::GitRefError> {
    cicd_agents_types::BranchName::new(text).map(|branch| branch.to_string())
}
