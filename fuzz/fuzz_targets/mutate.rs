//! A structure-aware mutator for model files. Most byte-level mutations of a model break
//! its header JSON and stop at the first check (after 10 minutes of byte-level
//! fuzzing, 1060 of the 1900 corpus inputs were `HeaderNotJson`). Half the time this one instead edits the graph JSON
//! inside the metadata, or one tensor's shape with its data resized to fit, and writes a
//! well-formed safetensors file around the result, so that mutations reach graph
//! validation, lowering, the planner and the kernels. The other half stays byte-level.

use libfuzzer_sys::fuzzer_mutate;
use serde_json::{Map, Value};

const GRAPH_KEY: &str = "kestrel.graph";

pub fn mutate(data: &mut [u8], size: usize, max_size: usize, seed: u32) -> usize {
    let mut rng = Rng(seed | 1);
    let mutated = match rng.below(4) {
        0 => File::parse(&data[..size]).and_then(|mut f| f.mutate_shape(&mut rng).then_some(f)),
        1 => File::parse(&data[..size]).and_then(|mut f| f.mutate_graph(max_size).then_some(f)),
        _ => None,
    };
    match mutated.map(|f| f.encode()) {
        Some(bytes) if bytes.len() <= max_size => {
            data[..bytes.len()].copy_from_slice(&bytes);
            bytes.len()
        }
        _ => fuzzer_mutate(data, size, max_size),
    }
}

/// A safetensors file taken apart: every tensor with its own bytes.
struct File {
    metadata: Option<Value>,
    // (name, entry without data_offsets, bytes)
    tensors: Vec<(String, Map<String, Value>, Vec<u8>)>,
}

impl File {
    fn parse(bytes: &[u8]) -> Option<File> {
        let len = usize::try_from(u64::from_le_bytes(*bytes.first_chunk::<8>()?)).ok()?;
        let header = bytes.get(8..8usize.checked_add(len)?)?;
        let body = &bytes[8 + len..];
        let Value::Object(mut top) = serde_json::from_slice(header).ok()? else {
            return None;
        };
        let metadata = top.remove("__metadata__");
        let mut tensors = Vec::new();
        for (name, entry) in top {
            let Value::Object(mut entry) = entry else {
                return None;
            };
            let offsets = entry.remove("data_offsets")?;
            let begin = usize::try_from(offsets.get(0)?.as_u64()?).ok()?;
            let end = usize::try_from(offsets.get(1)?.as_u64()?).ok()?;
            tensors.push((name, entry, body.get(begin..end)?.to_vec()));
        }
        Some(File { metadata, tensors })
    }

    /// Sets one dimension of one float tensor to a small size and resizes its data.
    fn mutate_shape(&mut self, rng: &mut Rng) -> bool {
        if self.tensors.is_empty() {
            return false;
        }
        let at = rng.below(self.tensors.len());
        let (_, entry, bytes) = &mut self.tensors[at];
        let width = match entry.get("dtype").and_then(Value::as_str) {
            Some("F32") => 4,
            Some("F16" | "BF16") => 2,
            Some("F64") => 8,
            _ => return false,
        };
        let Some(Value::Array(shape)) = entry.get_mut("shape") else {
            return false;
        };
        let mut dims: Vec<usize> = shape
            .iter()
            .filter_map(|d| d.as_u64())
            .map(|d| d as usize)
            .collect();
        if dims.len() != shape.len() {
            return false;
        }
        match rng.below(4) {
            // A new dimension of 1 (rank changes reach the rank checks).
            0 if dims.len() < 5 => dims.insert(rng.below(dims.len() + 1), 1),
            1 if !dims.is_empty() => {
                dims.remove(rng.below(dims.len()));
            }
            _ if !dims.is_empty() => {
                let d = rng.below(dims.len());
                dims[d] = 1 + rng.below(8);
            }
            _ => return false,
        }
        let Some(len) = dims.iter().product::<usize>().checked_mul(width) else {
            return false;
        };
        if len > 1 << 20 {
            return false;
        }
        *shape = dims.iter().map(|&d| Value::from(d)).collect();
        // Cycle the old bytes, so values keep their dtype's range.
        let old = std::mem::take(bytes);
        *bytes = match old.is_empty() {
            true => vec![0; len],
            false => old.iter().copied().cycle().take(len).collect(),
        };
        true
    }

    /// Mutates the graph JSON string with libFuzzer's own byte mutations.
    fn mutate_graph(&mut self, max_size: usize) -> bool {
        let Some(Value::String(graph)) = self.metadata.as_mut().and_then(|m| m.get_mut(GRAPH_KEY))
        else {
            return false;
        };
        let mut buf = std::mem::take(graph).into_bytes();
        let len = buf.len();
        let room = max_size.max(len);
        buf.resize(room, 0);
        let new_len = fuzzer_mutate(&mut buf, len, room);
        buf.truncate(new_len);
        *graph = String::from_utf8_lossy(&buf).into_owned();
        true
    }

    /// Tensors laid out in order, no gaps: a file the loader's layout checks accept.
    fn encode(self) -> Vec<u8> {
        let mut top = Map::new();
        if let Some(metadata) = self.metadata {
            top.insert("__metadata__".into(), metadata);
        }
        let mut body = Vec::new();
        for (name, mut entry, bytes) in self.tensors {
            let offsets = [body.len(), body.len() + bytes.len()];
            entry.insert("data_offsets".into(), Value::from(offsets.to_vec()));
            top.insert(name, Value::Object(entry));
            body.extend_from_slice(&bytes);
        }
        let header = serde_json::to_vec(&Value::Object(top)).expect("a JSON value serialises");
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(&header);
        file.extend_from_slice(&body);
        file
    }
}

/// xorshift32, seeded by libFuzzer so that a run replays.
struct Rng(u32);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0 as usize % n
    }
}
