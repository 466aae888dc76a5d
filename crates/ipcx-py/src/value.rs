//! MessagePack values (`rmpv::Value`) to Python objects and back: what RPC arguments and
//! results are on the wire (the `msgpack` codec of docs/PROTOCOL.md).
//!
//! | MessagePack | Python |
//! |---|---|
//! | nil, bool, int, float | `None`, `bool`, `int`, `float` |
//! | str | `str` (a str that is not UTF-8 arrives as `bytes`) |
//! | bin | `bytes` (`bytearray` and `memoryview` are sent as bin too) |
//! | array | `list` (`list` and `tuple` are sent as arrays) |
//! | map | `dict` |
//! | ext | `(code, bytes)` |

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple,
};
use rmpv::Value;

/// How deep values nest at most (both ways): deeper ones are refused, not a stack overflow.
const MAX_DEPTH: usize = 256;

/// The Python object of `v`.
pub(crate) fn to_py(py: Python<'_>, v: &Value) -> PyResult<Py<PyAny>> {
    to_py_at(py, v, 0)
}

fn to_py_at(py: Python<'_>, v: &Value, depth: usize) -> PyResult<Py<PyAny>> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "MessagePack value nested deeper than {MAX_DEPTH} levels"
        )));
    }
    Ok(match v {
        Value::Nil => py.None(),
        Value::Boolean(b) => PyBool::new(py, *b).to_owned().into_any().unbind(),
        Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(n), _) => n.into_pyobject(py)?.into_any().unbind(),
            (None, Some(n)) => n.into_pyobject(py)?.into_any().unbind(),
            _ => unreachable!("a MessagePack integer is an i64 or a u64"),
        },
        Value::F32(f) => PyFloat::new(py, f64::from(*f)).into_any().unbind(),
        Value::F64(f) => PyFloat::new(py, *f).into_any().unbind(),
        Value::String(s) => match s.as_str() {
            Some(s) => PyString::new(py, s).into_any().unbind(),
            None => PyBytes::new(py, s.as_bytes()).into_any().unbind(),
        },
        Value::Binary(b) => PyBytes::new(py, b).into_any().unbind(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py_at(py, item, depth + 1)?)?;
            }
            list.into_any().unbind()
        }
        Value::Map(entries) => {
            let dict = PyDict::new(py);
            for (k, v) in entries {
                let key = to_py_at(py, k, depth + 1)?;
                // Lists cannot be keys in Python: an array key becomes a tuple.
                let key = match key.bind(py).cast::<PyList>() {
                    Ok(l) => PyTuple::new(py, l.iter())?.into_any().unbind(),
                    Err(_) => key,
                };
                dict.set_item(key, to_py_at(py, v, depth + 1)?)?;
            }
            dict.into_any().unbind()
        }
        Value::Ext(code, bytes) => (*code, PyBytes::new(py, bytes))
            .into_pyobject(py)?
            .into_any()
            .unbind(),
    })
}

/// The MessagePack value of `obj`; `TypeError` for objects MessagePack has no form for.
pub(crate) fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    from_py_at(obj, 0)
}

fn from_py_at(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "value nested deeper than {MAX_DEPTH} levels (or contains itself)"
        )));
    }
    if obj.is_none() {
        return Ok(Value::Nil);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Boolean(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(n) = obj.extract::<i64>() {
            return Ok(Value::from(n));
        }
        if let Ok(n) = obj.extract::<u64>() {
            return Ok(Value::from(n));
        }
        return Err(PyOverflowError::new_err(
            "integer out of MessagePack's range (-2**63 .. 2**64-1)",
        ));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::F64(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::from(s.to_str()?));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Binary(b.as_bytes().to_vec()));
    }
    if obj.is_instance_of::<PyByteArray>() || obj.is_instance_of::<PyMemoryView>() {
        let buf = crate::channel::Bytes::borrow(obj)?;
        let v = Value::Binary(buf.as_slice().to_vec());
        buf.release(obj.py());
        return Ok(v);
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l
            .iter()
            .map(|i| from_py_at(&i, depth + 1))
            .collect::<PyResult<_>>()
            .map(Value::Array);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .map(|i| from_py_at(&i, depth + 1))
            .collect::<PyResult<_>>()
            .map(Value::Array);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return d
            .iter()
            .map(|(k, v)| Ok((from_py_at(&k, depth + 1)?, from_py_at(&v, depth + 1)?)))
            .collect::<PyResult<_>>()
            .map(Value::Map);
    }
    Err(PyTypeError::new_err(format!(
        "{} has no MessagePack form: use None, bool, int, float, str, bytes, list, tuple or dict",
        obj.get_type().name()?
    )))
}
