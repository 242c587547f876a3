//! The one tokio runtime of the process, and running futures on it from
//! Python: blocking (GIL released, Ctrl-C cancels) or as asyncio awaitables.
//!
//! Blocking calls spawn the future on the runtime and wait for its result on a
//! channel with the GIL released, waking every [`TICK`] to run Python's signal
//! handlers (`py.check_signals()`). When a handler raises (KeyboardInterrupt
//! on Ctrl-C), the task is aborted, which drops the future: for a build that
//! cancels the solve on the daemon (the library guarantees it). The call then
//! waits briefly for the task to be gone and re-raises.
//!
//! A panic inside the future is caught and raised as `cicd_agents.Error`,
//! never as `PanicException`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use futures::FutureExt;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::errors;

/// How often a blocking call looks at Python's signal handlers.
pub const TICK: Duration = Duration::from_millis(100);

/// How long a cancelled call waits for its task to be dropped.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The process-wide runtime, started on first use (and shared with
/// `pyo3-async-runtimes` for the asyncio methods).
pub fn runtime() -> PyResult<&'static Runtime> {
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let built = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cicd-agents")
        .build()
        .map_err(|err| errors::Error::new_err(format!("cannot start the tokio runtime: {err}")))?;
    // Another thread may have won the race; its runtime is used and ours dropped.
    let _ = RUNTIME.set(built);
    let runtime = RUNTIME
        .get()
        .ok_or_else(|| errors::internal("the tokio runtime is not set"))?;
    let _ = pyo3_async_runtimes::tokio::init_with_runtime(runtime);
    Ok(runtime)
}

/// A panic's payload as text.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic".to_string()
    }
}

/// Runs `future`, turning a panic into an error message.
pub async fn catch_panic<F: Future>(future: F) -> Result<F::Output, String> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(panic_message)
}

/// A future running on the runtime; dropping it aborts the future.
pub struct Task<T> {
    result: Receiver<Result<T, String>>,
    handle: JoinHandle<()>,
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl<T: Send + 'static> Task<T> {
    /// Spawns `future` on the runtime.
    pub fn spawn<F>(future: F) -> PyResult<Task<T>>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let (sender, result) = mpsc::channel();
        let handle = runtime()?.spawn(async move {
            let outcome = catch_panic(future).await;
            let _ = sender.send(outcome);
        });
        Ok(Task { result, handle })
    }

    /// Waits for the result with the GIL released, running Python's signal
    /// handlers every [`TICK`]. If one raises, the future is cancelled
    /// (dropped) and the exception returned.
    pub fn wait(mut self, py: Python<'_>) -> PyResult<T> {
        loop {
            match self.poll(py, TICK)? {
                Some(value) => return Ok(value),
                None => continue,
            }
        }
    }

    /// Waits up to `timeout` for the result (GIL released). `Ok(None)` on
    /// timeout. Runs the signal handlers after a timeout; if one raises, the
    /// task is cancelled and the exception returned.
    pub fn poll(&mut self, py: Python<'_>, timeout: Duration) -> PyResult<Option<T>> {
        let result = &mut self.result;
        match py.detach(move || result.recv_timeout(timeout)) {
            Ok(Ok(value)) => Ok(Some(value)),
            Ok(Err(panic)) => Err(errors::internal(format!("panic: {panic}"))),
            Err(RecvTimeoutError::Timeout) => {
                if let Err(err) = py.check_signals() {
                    self.cancel(py);
                    return Err(err);
                }
                Ok(None)
            }
            Err(RecvTimeoutError::Disconnected) => Err(errors::Cancelled::new_err("cancelled")),
        }
    }

    /// Aborts the future and waits (GIL released, at most a few seconds) until
    /// it has been dropped, so that its cancellation has been sent on.
    pub fn cancel(&mut self, py: Python<'_>) {
        self.handle.abort();
        let result = &mut self.result;
        let _ = py.detach(move || result.recv_timeout(CANCEL_GRACE));
    }
}

/// Runs `future` to completion on the runtime, blocking with the GIL released;
/// Ctrl-C cancels it. See the module documentation.
pub fn block_on<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    Task::spawn(future)?.wait(py)
}

/// The `async def` that [`awaitable`] returns a coroutine of: it calls `start`
/// (which spawns the Rust future) only when the coroutine is first awaited.
const DEFERRED: &std::ffi::CStr = c"async def awaitable(start):
    return await start()
";

static DEFERRED_FN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Wraps `future` as a coroutine (a real `async def` coroutine object):
/// nothing starts until it is awaited (`await`, `asyncio.run`, `create_task`,
/// `gather`, `wait_for`, ...), and one never awaited drops the future unrun.
/// Once awaited, the future runs on the runtime; cancelling the awaiting task
/// drops it (for a build: cancels it on the daemon). A panic becomes
/// `cicd_agents.Error`.
pub fn awaitable<'py, T, F>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    runtime()?;
    let pending = Mutex::new(Some(future));
    let start = PyCFunction::new_closure(
        py,
        Some(c"start"),
        None,
        move |args: &Bound<'_, PyTuple>,
              _kwargs: Option<&Bound<'_, PyDict>>|
              -> PyResult<Py<PyAny>> {
            let py = args.py();
            let future = pending
                .lock()
                .ok()
                .and_then(|mut slot| slot.take())
                .ok_or_else(|| errors::internal("this call was already awaited"))?;
            let started = pyo3_async_runtimes::tokio::future_into_py(py, async move {
                match catch_panic(future).await {
                    Ok(result) => result,
                    Err(panic) => Err(errors::internal(format!("panic: {panic}"))),
                }
            })?;
            Ok(started.unbind())
        },
    )?;
    let deferred = DEFERRED_FN.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        let module = PyModule::from_code(
            py,
            DEFERRED,
            c"cicd_agents/_awaitable.py",
            c"cicd_agents._awaitable",
        )?;
        Ok(module.getattr("awaitable")?.unbind())
    })?;
    deferred.bind(py).call1((start,))
}
