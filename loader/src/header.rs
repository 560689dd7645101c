//! Our own validation of a safetensors file's header, run before the official crate sees the
//! bytes, so that every defect gets a named error instead of the crate's generic one.
//!
//! File layout: `[u64 LE header_len][header_len bytes of JSON][data section]`.
//! The JSON maps each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}`
//! (offsets relative to the data section) plus an optional `"__metadata__"` string map.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::Dtype;
use serde_json::{Map, Value};

use crate::json::{self, describe, JsonError};
use crate::LoadError;

/// The official crate refuses headers over 100 MB (`MAX_HEADER_SIZE` in safetensors 0.8).
pub(crate) const MAX_HEADER_LEN: u64 = 100_000_000;
const LEN_BYTES: usize = 8;
const METADATA_KEY: &str = "__metadata__";

/// One tensor's header entry, checked: dtype known, byte size == `end - begin`,
/// `end <= data_len`.
pub(crate) struct Entry {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub begin: usize,
    pub end: usize,
}

pub(crate) struct Header {
    pub entries: Vec<Entry>,
    pub metadata: BTreeMap<String, String>,
    /// Where the data section starts in the file: `Entry` offsets count from here.
    pub data_start: usize,
}

/// Checks everything in `bytes` (the whole file) that can be checked without reading the
/// tensor data. `path` is only used in error messages.
pub(crate) fn validate(path: &Path, bytes: &[u8]) -> Result<Header, LoadError> {
    let p = || path.to_path_buf();
    let file_len = bytes.len() as u64;
    if bytes.is_empty() {
        return Err(LoadError::Empty { path: p() });
    }
    let Some(len_bytes) = bytes.first_chunk::<LEN_BYTES>() else {
        return Err(LoadError::Truncated { path: p() });
    };
    let header_len = u64::from_le_bytes(*len_bytes);
    // Compare against what follows the length, not `8 + header_len`, which can overflow.
    if header_len > file_len - LEN_BYTES as u64 {
        return Err(LoadError::HeaderPastEnd {
            path: p(),
            header_len,
            file_len,
        });
    }
    if header_len > MAX_HEADER_LEN {
        return Err(LoadError::HeaderTooLarge {
            path: p(),
            header_len,
            limit: MAX_HEADER_LEN,
        });
    }
    // header_len <= file_len - 8, so both conversions and the addition fit in usize.
    let header_end = LEN_BYTES + header_len as usize;
    let (Some(header_bytes), Some(data)) =
        (bytes.get(LEN_BYTES..header_end), bytes.get(header_end..))
    else {
        return Err(LoadError::HeaderPastEnd {
            path: p(),
            header_len,
            file_len,
        });
    };

    let text = std::str::from_utf8(header_bytes).map_err(|e| LoadError::HeaderNotJson {
        path: p(),
        detail: format!("not UTF-8: {e}"),
    })?;
    let top = match json::parse_unique(text) {
        Ok(Value::Object(top)) => top,
        Ok(_) => return Err(LoadError::HeaderNotObject { path: p() }),
        Err(JsonError::DuplicateKey(key)) => {
            return Err(LoadError::DuplicateKey { path: p(), key })
        }
        Err(JsonError::Syntax(e)) => {
            return Err(LoadError::HeaderNotJson {
                path: p(),
                detail: e.to_string(),
            })
        }
    };

    let data_len = data.len();
    let mut metadata = BTreeMap::new();
    let mut entries = Vec::with_capacity(top.len());
    for (name, value) in &top {
        if name == METADATA_KEY {
            metadata = parse_metadata(value)
                .map_err(|detail| LoadError::BadMetadata { path: p(), detail })?;
        } else {
            entries.push(parse_entry(path, name, value, data_len, bytes.len())?);
        }
    }
    check_layout(path, &mut entries, data_len)?;
    Ok(Header {
        entries,
        metadata,
        data_start: header_end,
    })
}

/// `null` counts as absent, as in the official crate; anything else must be `{string: string}`.
fn parse_metadata(value: &Value) -> Result<BTreeMap<String, String>, String> {
    let map = match value {
        Value::Null => return Ok(BTreeMap::new()),
        Value::Object(map) => map,
        other => return Err(format!("found {}", describe(other))),
    };
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(format!("key {k:?} holds {}, not a string", describe(other))),
        })
        .collect()
}

fn parse_entry(
    path: &Path,
    name: &str,
    value: &Value,
    data_len: usize,
    file_len: usize,
) -> Result<Entry, LoadError> {
    let bad = |detail: String| LoadError::BadTensorEntry {
        path: path.to_path_buf(),
        tensor: name.to_string(),
        detail,
    };
    let Value::Object(obj) = value else {
        return Err(bad(format!(
            "entry must be an object with dtype, shape and data_offsets, found {}",
            describe(value)
        )));
    };
    let dtype_name = match field(obj, "dtype").map_err(&bad)? {
        Value::String(s) => s,
        other => {
            return Err(bad(format!(
                "\"dtype\" must be a string, found {}",
                describe(other)
            )))
        }
    };
    let shape = u64_array(field(obj, "shape").map_err(&bad)?, "shape").map_err(&bad)?;
    let offsets =
        u64_array(field(obj, "data_offsets").map_err(&bad)?, "data_offsets").map_err(&bad)?;
    let &[begin, end] = offsets.as_slice() else {
        return Err(bad(format!(
            "\"data_offsets\" must be [begin, end], found {offsets:?}"
        )));
    };
    if begin > end {
        return Err(bad(format!(
            "data_offsets [{begin}, {end}] end before they begin"
        )));
    }
    // Any name the safetensors crate knows ("F32", "BF16", "I64", "F8_E4M3", ...).
    let dtype: Dtype = serde_json::from_value(Value::String(dtype_name.clone())).map_err(|_| {
        LoadError::UnknownDtype {
            path: path.to_path_buf(),
            tensor: name.to_string(),
            dtype: dtype_name.clone(),
        }
    })?;

    if end > data_len as u64 {
        return Err(LoadError::OffsetsOutOfRange {
            path: path.to_path_buf(),
            tensor: name.to_string(),
            begin,
            end,
            data_len: data_len as u64,
        });
    }
    // Size in bits (sub-byte dtypes such as F4 exist), with checked arithmetic. A size larger
    // than the whole file is "too large" (no offsets could ever hold it); a smaller one that
    // differs from the span is a mismatch. Nothing is allocated from the shape either way.
    let too_large = || LoadError::ShapeTooLarge {
        path: path.to_path_buf(),
        tensor: name.to_string(),
        shape: shape.clone(),
    };
    let bits = shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .and_then(|n| n.checked_mul(dtype.bitsize() as u64))
        .ok_or_else(too_large)?;
    if bits % 8 != 0 {
        return Err(bad(format!(
            "shape {shape:?} × {dtype} is {bits} bits, not a whole number of bytes"
        )));
    }
    let expected_bytes = bits / 8;
    if expected_bytes > file_len as u64 {
        return Err(too_large());
    }
    let shape_usize: Vec<usize> = shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| too_large())?;
    if expected_bytes != end - begin {
        return Err(LoadError::SizeMismatch {
            path: path.to_path_buf(),
            tensor: name.to_string(),
            shape: shape_usize,
            dtype,
            expected_bytes,
            actual_bytes: end - begin,
        });
    }
    // end <= data_len, which is a usize.
    Ok(Entry {
        name: name.to_string(),
        dtype,
        shape: shape_usize,
        begin: begin as usize,
        end: end as usize,
    })
}

fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a Value, String> {
    obj.get(key).ok_or_else(|| format!("entry has no {key:?}"))
}

fn u64_array(value: &Value, key: &str) -> Result<Vec<u64>, String> {
    let Value::Array(items) = value else {
        return Err(format!(
            "{key:?} must be an array of non-negative integers, found {}",
            describe(value)
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_u64().ok_or_else(|| {
                format!(
                    "{key}[{i}] must be a non-negative integer, found {}",
                    describe(v)
                )
            })
        })
        .collect()
}

/// Sorted by offset, the tensors must tile the data section exactly: no overlap, no gap,
/// nothing after the last one. Zero-size tensors may sit at any tensor boundary.
fn check_layout(path: &Path, entries: &mut [Entry], data_len: usize) -> Result<(), LoadError> {
    entries.sort_by(|a, b| (a.begin, a.end, &a.name).cmp(&(b.begin, b.end, &b.name)));
    // `covered`: end of the bytes claimed so far, and the tensor that claimed them last.
    let mut covered: (usize, Option<&str>) = (0, None);
    for e in entries.iter() {
        if e.begin < covered.0 {
            return Err(LoadError::Overlap {
                path: path.to_path_buf(),
                tensor: e.name.clone(),
                other: covered.1.unwrap_or_default().to_string(),
            });
        }
        if e.begin > covered.0 {
            return Err(LoadError::Gap {
                path: path.to_path_buf(),
                tensor: e.name.clone(),
                begin: e.begin as u64,
                previous_end: covered.0 as u64,
            });
        }
        if e.end > e.begin || covered.1.is_none() {
            covered = (e.end, Some(&e.name));
        }
    }
    if covered.0 != data_len {
        return Err(LoadError::TrailingBytes {
            path: path.to_path_buf(),
            data_end: covered.0 as u64,
            data_len: data_len as u64,
        });
    }
    Ok(())
}
