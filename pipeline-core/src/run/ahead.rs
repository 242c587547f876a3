//! Work done while the image builds: the chart's clone made ahead, and looks at its branch
//! once the daemon has finished exporting, so that "nothing to change" rarely needs a look at
//! the server after the build.
//!
//! A look counts only if it began after the build's last reported activity
//! ([`Checkout::fresh_as_of`]): a look taken while the daemon still worked is not trusted, and
//! the chart step asks again as it would without this.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use cicd_agents_buildkit::progress::StatusUpdate;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::git::Checkout;

/// Looks at the branch per build, at most: each one is a request to the git server.
const MAX_LOOKS: u32 = 3;

/// What the daemon is doing, as far as its progress tells.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Activity {
    /// Steps started and not finished.
    running: usize,
    /// Whether an export step (`exporting …`) has finished.
    exported: bool,
    /// When the last update arrived.
    last: Option<Instant>,
}

/// Follows the daemon's steps for [`build_and_look`]; fed by the build's progress sink.
#[derive(Debug)]
pub(crate) struct ActivityTracker {
    running: std::collections::HashSet<String>,
    /// The export steps seen (an update may leave a step's name out).
    exports: std::collections::HashSet<String>,
    exported: bool,
    sender: watch::Sender<Activity>,
}

impl ActivityTracker {
    pub(crate) fn new() -> (Self, watch::Receiver<Activity>) {
        let (sender, receiver) = watch::channel(Activity::default());
        let tracker = Self {
            running: std::collections::HashSet::new(),
            exports: std::collections::HashSet::new(),
            exported: false,
            sender,
        };
        (tracker, receiver)
    }

    pub(crate) fn update(&mut self, update: &StatusUpdate) {
        for v in &update.vertexes {
            if v.name.starts_with("exporting") {
                self.exports.insert(v.digest.clone());
            }
            if v.completed.is_some() || !v.error.is_empty() {
                self.running.remove(&v.digest);
                if self.exports.contains(&v.digest) {
                    self.exported = true;
                }
            } else if v.started.is_some() {
                self.running.insert(v.digest.clone());
            }
        }
        let activity = Activity {
            running: self.running.len(),
            exported: self.exported,
            last: Some(Instant::now()),
        };
        self.sender.send_replace(activity);
    }
}

/// When the build's progress last said something (now, if it never did).
pub(crate) fn last_activity(activity: &watch::Receiver<Activity>) -> Instant {
    activity.borrow().last.unwrap_or_else(Instant::now)
}

/// Runs `building` to its end, and looks at the branch of `checkout` whenever the daemon has
/// exported and runs no step. Returns the build's outcome and the clone (`None` only if a
/// look's task panicked), told from when on its "nothing to change" must hold: the build's
/// last reported activity.
pub(crate) async fn build_and_look<F: Future>(
    mut building: Pin<&mut F>,
    checkout: Checkout,
    mut activity: watch::Receiver<Activity>,
) -> (F::Output, Option<Checkout>) {
    let mut idle = Some(checkout);
    let mut look: Option<JoinHandle<Checkout>> = None;
    let mut looks = 0;
    let mut last_look: Option<Instant> = None;
    let outcome = loop {
        let now = *activity.borrow();
        let news = match (now.last, last_look) {
            (Some(last), Some(looked)) => last > looked,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let quiet = now.exported && now.running == 0 && news;
        if quiet && looks < MAX_LOOKS {
            if let Some(mut taken) = idle.take() {
                looks += 1;
                last_look = Some(Instant::now());
                look = Some(tokio::task::spawn_blocking(move || {
                    if let Err(err) = taken.check_unmoved() {
                        tracing::debug!(error = %err, "a look at the chart branch during the build failed");
                    }
                    taken
                }));
            }
        }
        tokio::select! {
            outcome = &mut building => break outcome,
            joined = join_if_any(&mut look), if look.is_some() => {
                look = None;
                idle = joined.ok();
                if idle.is_none() {
                    // The look's task panicked: the clone is gone; nothing more to look at.
                    looks = MAX_LOOKS;
                }
            }
            changed = activity.changed() => {
                if changed.is_err() {
                    // The tracker is gone: nothing more to look for.
                    looks = MAX_LOOKS;
                }
            }
        }
    };
    if let Some(task) = look {
        idle = task.await.ok();
    }
    let last = last_activity(&activity);
    if let Some(checkout) = idle.as_mut() {
        checkout.fresh_as_of(last);
    }
    (outcome, idle)
}

/// The task's end; never, without a task.
async fn join_if_any<T>(task: &mut Option<JoinHandle<T>>) -> Result<T, tokio::task::JoinError> {
    match task {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cicd_agents_buildkit::progress::VertexUpdate;
    use std::time::SystemTime;

    fn vertex(digest: &str, name: &str, started: bool, completed: bool) -> VertexUpdate {
        VertexUpdate {
            digest: digest.into(),
            name: name.into(),
            inputs: Vec::new(),
            cached: false,
            started: started.then(SystemTime::now),
            completed: completed.then(SystemTime::now),
            error: String::new(),
        }
    }

    fn update(vertexes: Vec<VertexUpdate>) -> StatusUpdate {
        StatusUpdate {
            vertexes,
            ..StatusUpdate::default()
        }
    }

    /// Quiet means: an export step has finished and no step runs; an export's name may come
    /// only in its first update.
    #[test]
    fn the_tracker_sees_the_exports_end_and_the_steps_that_run() {
        let (mut tracker, activity) = ActivityTracker::new();
        assert!(activity.borrow().last.is_none());
        tracker.update(&update(vec![vertex("a", "[1/2] FROM x", true, false)]));
        let now = *activity.borrow();
        assert_eq!((now.running, now.exported), (1, false));
        tracker.update(&update(vec![vertex("a", "", true, true)]));
        let now = *activity.borrow();
        assert_eq!((now.running, now.exported), (0, false));
        tracker.update(&update(vec![vertex(
            "e",
            "exporting to image",
            true,
            false,
        )]));
        assert_eq!(activity.borrow().running, 1);
        let before = activity.borrow().last;
        // The completion names no step: the export is known by its digest.
        tracker.update(&update(vec![vertex("e", "", true, true)]));
        let now = *activity.borrow();
        assert_eq!((now.running, now.exported), (0, true));
        assert!(now.last >= before);
    }
}
