//! The reference-file reader `kestrel compare` and `kestrel run --input` use: any bytes
//! must give tensors that hold what their shapes promise, or a typed error, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = kestrel_loader::read_tensors_from_bytes("fuzz.ref.safetensors".as_ref(), data)
    else {
        return;
    };
    for (name, t) in &file.tensors {
        let Some(values) = &t.data else {
            continue;
        };
        // Touch every value, as `compare` does when it diffs them.
        let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
        std::hint::black_box(sum);
        assert_eq!(
            values.len(),
            t.shape.iter().product::<usize>(),
            "tensor {name:?}: shape {:?}",
            t.shape
        );
    }
});
