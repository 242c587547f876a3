//! Conversions between Python values and the Rust types of the library:
//! JSON values, timestamps, durations, paths and the "a str, or a list of
//! str" arguments Python users expect.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString};

use crate::errors;

/// A JSON value as the Python value `json.loads` would give.
pub fn json_to_py<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        serde_json::Value::Null => py.None().into_bound(py),
        serde_json::Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        serde_json::Value::String(s) => PyString::new(py, s).into_any(),
        serde_json::Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        serde_json::Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, json_to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// A serialisable library value as a Python dict (the library's own serde form).
pub fn to_dict<'py, T: serde::Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_value(value)
        .map_err(|err| errors::internal(format!("serialising: {err}")))?;
    json_to_py(py, &json)
}

/// A timestamp as a timezone-aware `datetime.datetime` in UTC.
pub fn datetime<'py>(
    py: Python<'py>,
    time: Option<SystemTime>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(time) = time else { return Ok(None) };
    let seconds = match time.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    };
    let module = py.import("datetime")?;
    let utc = module.getattr("timezone")?.getattr("utc")?;
    let class = module.getattr("datetime")?;
    Ok(Some(class.call_method1("fromtimestamp", (seconds, utc))?))
}

/// A duration given as seconds (int or float) or a `datetime.timedelta`.
pub fn duration(value: &Bound<'_, PyAny>, option: &str) -> PyResult<Duration> {
    let seconds: f64 = if value.hasattr("total_seconds")? {
        value.call_method0("total_seconds")?.extract()?
    } else if value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>() {
        value.extract()?
    } else {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{option} must be a number of seconds or a datetime.timedelta, not {}",
            type_name(value)
        )));
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        errors::invalid_option(
            option,
            format!("{seconds} is not a non-negative number of seconds"),
        )
    })
}

/// The name of a value's type, for error messages.
pub fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "object".to_string())
}

/// A `str` or `os.PathLike`.
pub fn path(value: &Bound<'_, PyAny>, option: &str) -> PyResult<PathBuf> {
    value.extract::<PathBuf>().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{option} must be a str or os.PathLike, not {}",
            type_name(value)
        ))
    })
}

/// A `str`, or a value of a `type=…,key=value` spec written as a Python
/// scalar (`True` → `true`, numbers as written).
pub fn spec_value(value: &Bound<'_, PyAny>, option: &str, key: &str) -> PyResult<String> {
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(text.to_cow()?.into_owned());
    }
    if let Ok(flag) = value.cast::<PyBool>() {
        return Ok(if flag.is_true() { "true" } else { "false" }.to_string());
    }
    if value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>() {
        return Ok(value.str()?.to_cow()?.into_owned());
    }
    if let Ok(path) = value.extract::<PathBuf>() {
        return Ok(path.to_string_lossy().into_owned());
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "{option}: the value of {key:?} must be a str, bool, int, float or path, not {}",
        type_name(value)
    )))
}

/// A single `str` or an iterable of `str` (a lone string is one item, not
/// its characters). `None` is empty.
pub fn str_list(value: Option<&Bound<'_, PyAny>>, option: &str) -> PyResult<Vec<String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(vec![text.to_cow()?.into_owned()]);
    }
    let iter = value.try_iter().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{option} must be a str or an iterable of str, not {}",
            type_name(value)
        ))
    })?;
    let mut items = Vec::new();
    for item in iter {
        let item = item?;
        let text = item.cast::<PyString>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "{option} must contain only str, found {}",
                type_name(&item)
            ))
        })?;
        items.push(text.to_cow()?.into_owned());
    }
    Ok(items)
}

/// Items of an argument that takes one spec or many: a `str` or `dict` is one
/// item, any other iterable gives its items. `None` is empty.
pub fn spec_items<'py>(
    value: Option<&Bound<'py, PyAny>>,
    option: &str,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    if value.is_instance_of::<PyString>() || value.cast::<PyMapping>().is_ok() {
        return Ok(vec![value.clone()]);
    }
    let iter = value.try_iter().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{option} must be a str, a dict or a list of them, not {}",
            type_name(value)
        ))
    })?;
    iter.collect()
}

/// A mapping of `str` to `str`. `None` is empty.
pub fn str_map(
    value: Option<&Bound<'_, PyAny>>,
    option: &str,
) -> PyResult<BTreeMap<String, String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(BTreeMap::new());
    };
    let mapping = value.cast::<PyMapping>().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{option} must be a mapping of str to str, not {}",
            type_name(value)
        ))
    })?;
    let mut map = BTreeMap::new();
    for item in mapping.items()?.iter() {
        let (key, item): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let key = key.cast::<PyString>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "{option}: keys must be str, found {}",
                type_name(&key)
            ))
        })?;
        let key = key.to_cow()?.into_owned();
        let text = item.cast::<PyString>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "{option}: the value of {key:?} must be a str, not {}",
                type_name(&item)
            ))
        })?;
        map.insert(key, text.to_cow()?.into_owned());
    }
    Ok(map)
}

/// A mapping's `(key, value)` items with `str` keys.
pub fn mapping_items<'py>(
    mapping: &Bound<'py, PyMapping>,
    option: &str,
) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
    let mut items = Vec::new();
    for item in mapping.items()?.iter() {
        let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let key = key.cast::<PyString>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "{option}: keys must be str, found {}",
                type_name(&key)
            ))
        })?;
        items.push((key.to_cow()?.into_owned(), value));
    }
    Ok(items)
}

/// An optional string as Python's `repr` writes it (`None` or a quoted string).
pub fn repr_opt(value: Option<&str>) -> String {
    match value {
        Some(text) => format!("{text:?}"),
        None => "None".to_string(),
    }
}
