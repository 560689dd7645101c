//! Random damage to real files, through the CLI: a model or a reference file with bytes
//! flipped, runs of bytes overwritten, cut short or spliced, given to `kestrel info`,
//! `run` and `compare`. Whatever the damage, the exit code is 0 or 1 (the damage only
//! touched weights or values) or 2 with exactly one line on stderr, and nothing panics.
//! Seeded; `KESTREL_MUTATIONS=N` runs more.

mod common;

use common::{fixture, reference, temp_path};
use std::process::Command;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random kind of damage. Most of it lands in the header (the first 8 bytes and the
/// JSON), where parsing and validation live; the rest anywhere.
fn mutate(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let header_end = 8 + u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let at = |rng: &mut Rng, len: usize| match rng.below(4) {
        0 => rng.below(len),
        _ => rng.below(header_end.min(len)),
    };
    match rng.below(6) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let i = at(rng, b.len());
                b[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let i = at(rng, b.len());
            let v = [b'0', b'9', b'-', b'"', b'{', b']', b',', 0xff][rng.below(8)];
            let n = 1 + rng.below(6);
            for x in b.iter_mut().skip(i).take(n) {
                *x = v;
            }
        }
        2 => b.truncate(at(rng, b.len())),
        3 => {
            let (i, j) = (at(rng, b.len()), at(rng, b.len()));
            let chunk: Vec<u8> = b[i.min(j)..i.max(j)].to_vec();
            let k = at(rng, b.len());
            b.splice(k..k, chunk);
        }
        4 => {
            // A digit of the JSON made much bigger: shapes, offsets, attributes.
            let digits: Vec<usize> = (8..header_end.min(b.len()))
                .filter(|&i| b[i].is_ascii_digit())
                .collect();
            if let Some(&i) = digits.get(rng.below(digits.len())) {
                b.splice(i..i, *b"99999");
            }
        }
        _ => {
            let i = at(rng, b.len());
            b.drain(i..(i + 1 + rng.below(16)).min(b.len()));
        }
    }
    b
}

fn check(args: &[&str], label: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_kestrel"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "{label}: exit {code:?} (a crash?)\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{label}: panicked\n{stderr}");
    if code == Some(2) {
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{label}: not one line\n{stderr}"
        );
        assert!(stderr.starts_with("error: "), "{label}: {stderr}");
    }
}

#[test]
fn damaged_files_get_exit_2_and_one_line_or_run() {
    let cases: usize = std::env::var("KESTREL_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let bad = temp_path("mutation.safetensors");
    let bad_s = bad.to_str().unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    // The CIFAR net, and the model with every op and attribute.
    for name in ["cifarnet", "allops"] {
        let model = std::fs::read(fixture(name)).unwrap();
        let refs = std::fs::read(reference(name, 1)).unwrap();
        let (model_path, ref_path) = (fixture(name), reference(name, 1));
        let (good_model, good_ref) = (model_path.to_str().unwrap(), ref_path.to_str().unwrap());
        for case in 0..cases {
            let label = format!("{name} mutation {case}");
            std::fs::write(&bad, mutate(&model, &mut rng)).unwrap();
            check(
                &["info", bad_s],
                &format!("{label}: info on a damaged model"),
            );
            check(
                &["compare", bad_s, good_ref],
                &format!("{label}: compare, damaged model"),
            );
            std::fs::write(&bad, mutate(&refs, &mut rng)).unwrap();
            check(
                &["compare", good_model, bad_s],
                &format!("{label}: compare, damaged reference"),
            );
        }
    }
    let _ = std::fs::remove_file(&bad);
}
