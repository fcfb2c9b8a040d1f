//! Python arguments as core values, where a Python type does not say what
//! the core needs: seconds as durations, and names as the values they stand
//! for.
//!
//! A refusal here is an `InvalidArgument` naming the argument and what it
//! takes. The ranges and rules of the values themselves (capacity a power of
//! two, at most so many subscribers, ...) are the core's to check: nothing
//! here repeats them.

use crate::errors::raise;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString};
use ringcast_core::FirstMessage;
use std::fmt::Display;
use std::time::Duration;

/// Longest duration an argument may give, in seconds (about 31 years):
/// every such duration fits u64 nanoseconds with room to spare.
const MAX_SECONDS: f64 = 1e9;

/// `secs` as a duration: positive, finite and at most [`MAX_SECONDS`]
/// (rounded to the nanosecond); else an `InvalidArgument` naming `what`.
pub(crate) fn seconds(py: Python<'_>, what: &str, secs: f64) -> PyResult<Duration> {
    duration(secs).ok_or_else(|| not_seconds(py, what, secs))
}

/// [`seconds`] of a Python number (int, float, numpy number; not a bool),
/// refused as the caller wrote it.
pub(crate) fn seconds_of(what: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let secs = if value.is_instance_of::<PyBool>() {
        None
    } else {
        value.extract::<f64>().ok()
    };
    match secs.and_then(duration) {
        Some(d) => Ok(d),
        None => Err(not_seconds(value.py(), what, value.repr()?)),
    }
}

fn duration(secs: f64) -> Option<Duration> {
    (secs > 0.0 && secs <= MAX_SECONDS).then(|| Duration::from_nanos((secs * 1e9).round() as u64))
}

fn not_seconds(py: Python<'_>, what: &str, got: impl Display) -> PyErr {
    raise(
        py,
        "InvalidArgument",
        format!("{what} must be a positive number of seconds, got {got}"),
    )
}

/// A core value that an argument gives by name (`producers="many"`).
pub(crate) trait Names: Copy + 'static {
    /// The argument, as refusals name it.
    const ARG: &'static str;
    /// Every accepted name, with the value it stands for.
    const NAMES: &'static [(&'static str, Self)];

    /// Said after the refusal of `got`: where such a value belongs instead.
    fn hint(_got: &str) -> String {
        String::new()
    }
}

/// An argument given as one of the names of `T`: anything else (another
/// string, or not a string at all) is refused, naming every name.
pub(crate) struct Named<T>(pub T);

impl<'py, T: Names> FromPyObject<'py> for Named<T> {
    fn extract_bound(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        named(obj, None).map(Named)
    }
}

/// The value of `T` that `obj` names; else an `InvalidArgument` listing the
/// names and then `otherwise` (what else the argument may be).
pub(crate) fn named<T: Names>(obj: &Bound<'_, PyAny>, otherwise: Option<&str>) -> PyResult<T> {
    let text = obj
        .downcast::<PyString>()
        .ok()
        .and_then(|s| s.to_cow().ok());
    let text = text.as_deref().unwrap_or_default();
    if let Some((_, value)) = T::NAMES.iter().find(|(name, _)| *name == text) {
        return Ok(*value);
    }
    let mut choices: Vec<String> = T::NAMES
        .iter()
        .map(|(name, _)| format!("{name:?}"))
        .collect();
    choices.extend(otherwise.map(str::to_owned));
    let last = choices.pop().unwrap_or_default();
    let choices = if choices.is_empty() {
        last
    } else {
        format!("{} or {last}", choices.join(", "))
    };
    Err(raise(
        obj.py(),
        "InvalidArgument",
        format!(
            "{} must be {choices}, got {}{}",
            T::ARG,
            obj.repr()?,
            T::hint(text)
        ),
    ))
}

/// A `timeout` argument: seconds, or None for forever. Bools and
/// non-numbers are refused (the range is checked by [`patience`]).
pub(crate) struct Seconds(pub(crate) Option<f64>);

impl<'py> FromPyObject<'py> for Seconds {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        if ob.is_none() {
            return Ok(Self(None));
        }
        let number = (!ob.is_instance_of::<PyBool>())
            .then(|| ob.extract::<f64>().ok())
            .flatten();
        number.map(|t| Self(Some(t))).ok_or_else(|| {
            refused(
                ob,
                "timeout must be None (wait forever) or a number of seconds >= 0",
            )
        })
    }
}

/// A `max_n` argument: an int (not a bool) from 1 to 2**62.
pub(crate) struct MaxN(pub(crate) usize);

impl<'py> FromPyObject<'py> for MaxN {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        let n = (!ob.is_instance_of::<PyBool>())
            .then(|| ob.extract::<i64>().ok())
            .flatten()
            .filter(|n| (1..=1 << 62).contains(n));
        n.map(|n| Self(n as usize))
            .ok_or_else(|| refused(ob, "max_n must be a number of messages >= 1"))
    }
}

/// `InvalidArgument`: "`rule`, got `repr(ob)`".
fn refused(ob: &Bound<'_, PyAny>, rule: &str) -> PyErr {
    let got = ob.repr().map_or_else(|_| "?".into(), |r| r.to_string());
    raise(ob.py(), "InvalidArgument", format!("{rule}, got {got}"))
}

/// `first=` of a recorder or bridge sender starting a new stage: "oldest"
/// (the oldest message still in the ring) or "latest".
pub fn first_message(py: Python<'_>, first: &str) -> PyResult<FirstMessage> {
    match first {
        "oldest" => Ok(FirstMessage::Oldest),
        "latest" => Ok(FirstMessage::Latest),
        _ => Err(raise(
            py,
            "InvalidArgument",
            format!("first must be \"oldest\" or \"latest\", got {first:?}"),
        )),
    }
}
