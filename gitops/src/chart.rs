//! The chart step on its own: set values in a chart repository (commit and push, or preview
//! the diff), or in a local values file. [`ChartUpdate`] is the one chart-update path: the
//! pipeline run, `cicd-agents chart set-image` and Python's `update_values` all go through it,
//! so they fill the commit message the same way and retry under the same deadline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::error::Result;
use crate::git::{format_elapsed, Checkout, CommitVars, WriteBack, WriteBackConfig};
use crate::values::{self, KeyPath, Segment};
use cicd_agents_types::duration::serialize_seconds as seconds;

/// One values file to update in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuesUpdate {
    /// Path relative to the repository root.
    pub file: PathBuf,
    /// `(key path, value)` pairs, applied in order to the first document.
    pub edits: Vec<(KeyPath, String)>,
}

/// One value set in a values file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValueChange {
    /// The values file (relative to the repository root, or as given for a local file).
    pub file: String,
    /// The key path.
    pub key: String,
    /// The value before.
    pub old: String,
    /// The value after.
    pub new: String,
    /// Whether the text changed.
    pub changed: bool,
}

/// What happened to the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChartStatus {
    /// A commit was pushed.
    Committed,
    /// The values already held the new values: no commit.
    NoChange,
    /// Dry run: the diff was computed, nothing committed.
    DryRun,
}

/// The result of a chart update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChartOutcome {
    /// The repository (no credentials).
    pub repo: String,
    /// The branch pushed to (or that would be pushed to).
    pub branch: String,
    /// What happened.
    pub status: ChartStatus,
    /// The pushed commit (`None` for no change and dry runs).
    pub commit: Option<String>,
    /// The commit the edit was applied on.
    pub parent: String,
    /// Attempts (more than 1 when pushes were rejected because the branch moved).
    pub attempts: u32,
    /// Time from the start of the update (clone included) until it landed.
    #[serde(rename = "elapsed_seconds", serialize_with = "seconds")]
    pub elapsed: Duration,
    /// Changed files.
    pub files: Vec<String>,
    /// Every value set (changed or not).
    pub changes: Vec<ValueChange>,
    /// The unified diff (dry runs only).
    pub diff: Option<String>,
    /// The commit message (of the commit made, or that would be made).
    pub message: Option<String>,
}

impl ChartOutcome {
    /// `commit <id>`, `no change` or `dry run`, followed by the attempts and the time taken
    /// when the branch moved under it (`commit <id> (3 attempts in 2.4s)`).
    pub fn summary(&self) -> String {
        let what = match (&self.status, &self.commit) {
            (ChartStatus::Committed, Some(c)) => format!("commit {c}"),
            (ChartStatus::DryRun, _) => return "dry run (nothing committed)".into(),
            _ => "no change".into(),
        };
        if self.attempts > 1 {
            format!(
                "{what} ({} attempts in {})",
                self.attempts,
                format_elapsed(self.elapsed)
            )
        } else {
            what
        }
    }

    /// Whether a commit was pushed.
    pub fn changed(&self) -> bool {
        self.status == ChartStatus::Committed
    }
}

/// Progress of [`ChartUpdate::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartProgress<'a> {
    /// The edit was applied on the branch tip; `attempt` 2 and later follow a rejected push
    /// (the tip fetched again, the edit re-applied on it).
    Edited {
        /// 1-based attempt.
        attempt: u32,
        /// The values set.
        changes: &'a [ValueChange],
    },
}

/// Values to set in a chart repository, and how to commit them.
///
/// ```no_run
/// use cicd_agents_gitops::git::{Author, CommitVars, GitAuth, WriteBackConfig};
/// use cicd_agents_gitops::chart::{ChartUpdate, ValuesUpdate};
/// use cicd_agents_gitops::values::KeyPath;
///
/// let mut config = WriteBackConfig::new(
///     "https://git.example.com/org/deploy.git",
///     "main",
///     Author { name: "ci".into(), email: "ci@example.com".into() },
/// );
/// config.auth = Some(GitAuth::from_env("GIT_TOKEN")?);
/// let update = ChartUpdate {
///     config,
///     updates: vec![ValuesUpdate {
///         file: "charts/app/values.yaml".into(),
///         edits: vec![(KeyPath::parse("image.tag")?, "1.2.3".into())],
///     }],
///     vars: CommitVars::default(),
/// };
/// let outcome = update.apply(&mut |_| {})?;
/// println!("{}", outcome.summary());
/// # Ok::<(), cicd_agents_gitops::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChartUpdate {
    /// Repository, branch, author, message, token, retries.
    pub config: WriteBackConfig,
    /// The values to set, per file.
    pub updates: Vec<ValuesUpdate>,
    /// Message variables; empty `image`, `old_tag` and `new_tag` are filled in from the edits.
    pub vars: CommitVars,
}

impl ChartUpdate {
    /// Clones, edits, commits and pushes, re-applying the edit on the moved branch until
    /// `config.retry.timeout` has passed (see [`crate::git`]). Blocking: from async
    /// code call it in `spawn_blocking`.
    pub fn apply(&self, progress: &mut dyn FnMut(ChartProgress<'_>)) -> Result<ChartOutcome> {
        self.apply_on(None, progress)
    }

    /// [`apply`](Self::apply) starting from a clone made ahead with
    /// [`WriteBack::clone_ahead`] (same configuration) when given, e.g. while the image was
    /// being built; see [`WriteBack::run_on`]. Blocking.
    pub fn apply_on(
        &self,
        checkout: Option<Checkout>,
        progress: &mut dyn FnMut(ChartProgress<'_>),
    ) -> Result<ChartOutcome> {
        let writeback = WriteBack::new(self.config.clone())?;
        let mut changes = Vec::new();
        let outcome = writeback.run_on(checkout, |tree| {
            let (vars, edited) = self.edit(|rel| Ok(tree.resolve(rel)?))?;
            changes = edited;
            progress(ChartProgress::Edited {
                attempt: tree.attempt(),
                changes: &changes,
            });
            Ok(vars)
        })?;
        Ok(ChartOutcome {
            repo: self.config.url.clone(),
            branch: outcome.branch,
            status: if outcome.commit.is_some() {
                ChartStatus::Committed
            } else {
                ChartStatus::NoChange
            },
            commit: outcome.commit,
            parent: outcome.parent,
            attempts: outcome.attempts,
            elapsed: outcome.elapsed,
            files: outcome.files,
            changes,
            diff: None,
            message: outcome.message,
        })
    }

    /// Clones and edits, and returns the diff; commits and pushes nothing. Blocking.
    pub fn preview(&self) -> Result<ChartOutcome> {
        let started = std::time::Instant::now();
        let writeback = WriteBack::new(self.config.clone())?;
        let mut changes = Vec::new();
        let preview = writeback.preview(|tree| {
            let (vars, edited) = self.edit(|rel| Ok(tree.resolve(rel)?))?;
            changes = edited;
            Ok(vars)
        })?;
        Ok(ChartOutcome {
            repo: self.config.url.clone(),
            branch: preview.branch,
            status: ChartStatus::DryRun,
            commit: None,
            parent: preview.parent,
            attempts: 1,
            elapsed: started.elapsed(),
            files: preview.files,
            changes,
            diff: Some(preview.diff),
            message: preview.message,
        })
    }

    fn edit(
        &self,
        resolve: impl Fn(&Path) -> Result<PathBuf>,
    ) -> Result<(CommitVars, Vec<ValueChange>)> {
        let mut changes = Vec::new();
        for update in &self.updates {
            let path = resolve(&update.file)?;
            let name = update.file.display().to_string();
            let edit = values::edit_file_as(&path, &name, &update.edits)?;
            for c in edit.changes {
                changes.push(ValueChange {
                    file: name.clone(),
                    key: c.path.to_string(),
                    old: c.old_value,
                    new: c.new_value,
                    changed: c.changed,
                });
            }
        }
        Ok((fill_vars(&self.vars, &self.updates, &changes), changes))
    }
}

fn last_key_is(key: &KeyPath, name: &str) -> bool {
    matches!(key.last(), Some(Segment::Key(k)) if k == name)
}

/// Fills empty `image`, `old_tag` and `new_tag`: the tag from the first edit whose key ends in
/// `tag` (else the first edit), the image from the first edit whose key ends in `repository`
/// (else `file:prefix` of the tag key).
fn fill_vars(vars: &CommitVars, updates: &[ValuesUpdate], changes: &[ValueChange]) -> CommitVars {
    let mut vars = vars.clone();
    let keys: Vec<(&ValuesUpdate, &KeyPath)> = updates
        .iter()
        .flat_map(|u| u.edits.iter().map(move |(k, _)| (u, k)))
        .collect();
    let tag_index = keys
        .iter()
        .position(|(_, k)| last_key_is(k, "tag"))
        .unwrap_or(0);
    if let Some(change) = changes.get(tag_index) {
        if vars.old_tag.is_empty() {
            vars.old_tag = change.old.clone();
        }
        if vars.new_tag.is_empty() {
            vars.new_tag = change.new.clone();
        }
    }
    if vars.image.is_empty() {
        if let Some(i) = keys.iter().position(|(_, k)| last_key_is(k, "repository")) {
            if let Some(change) = changes.get(i) {
                vars.image = change.new.clone();
            }
        } else if let Some((update, key)) = keys.get(tag_index) {
            let segments = key.segments();
            let prefix =
                KeyPath::from_segments(segments[..segments.len().saturating_sub(1)].to_vec())
                    .map(|p| format!(":{p}"))
                    .unwrap_or_default();
            vars.image = format!("{}{prefix}", update.file.display());
        }
    }
    vars
}

/// The result of [`set_local`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalEdit {
    /// The file.
    pub file: String,
    /// Whether it was rewritten.
    pub changed: bool,
    /// Every value set.
    pub changes: Vec<ValueChange>,
}

/// Sets `(key path, value)` pairs in a local values file, format-preserving, all or nothing
/// (see [`crate::values`]).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("values.yaml");
/// std::fs::write(&path, "image:\n  tag: \"1.0\" # set by CI\n")?;
/// let edit = cicd_agents_gitops::chart::set_local(&path, &[("image.tag", "1.10")])?;
/// assert!(edit.changed);
/// assert_eq!(std::fs::read_to_string(&path)?, "image:\n  tag: \"1.10\" # set by CI\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn set_local<K: AsRef<str>, V: AsRef<str>>(path: &Path, edits: &[(K, V)]) -> Result<LocalEdit> {
    let parsed = edits
        .iter()
        .map(|(k, v)| Ok((KeyPath::parse(k.as_ref())?, v.as_ref().to_string())))
        .collect::<Result<Vec<_>, crate::error::ValuesError>>()?;
    let name = path.display().to_string();
    let edit = values::edit_file(path, &parsed)?;
    Ok(LocalEdit {
        file: name.clone(),
        changed: edit.changed,
        changes: edit
            .changes
            .into_iter()
            .map(|c| ValueChange {
                file: name.clone(),
                key: c.path.to_string(),
                old: c.old_value,
                new: c.new_value,
                changed: c.changed,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_message_variables_from_the_edits() {
        let key = |k: &str| KeyPath::parse(k).unwrap_or_else(|e| panic!("{e}"));
        let updates = vec![ValuesUpdate {
            file: "charts/app/values.yaml".into(),
            edits: vec![
                (key("image.repository"), "r/app".into()),
                (key("image.tag"), "2".into()),
            ],
        }];
        let changes = vec![
            ValueChange {
                file: "f".into(),
                key: "image.repository".into(),
                old: "r/app".into(),
                new: "r/app".into(),
                changed: false,
            },
            ValueChange {
                file: "f".into(),
                key: "image.tag".into(),
                old: "1".into(),
                new: "2".into(),
                changed: true,
            },
        ];
        let vars = fill_vars(&CommitVars::default(), &updates, &changes);
        assert_eq!(
            (
                vars.image.as_str(),
                vars.old_tag.as_str(),
                vars.new_tag.as_str()
            ),
            ("r/app", "1", "2")
        );
        let tag_only = vec![ValuesUpdate {
            file: "values.yaml".into(),
            edits: vec![(key("api.image.tag"), "2".into())],
        }];
        let vars = fill_vars(&CommitVars::default(), &tag_only, &changes[1..]);
        assert_eq!(vars.image, "values.yaml:api.image");
    }
}
