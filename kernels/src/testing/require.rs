//! The one require-or-skip: a test whose machine lacks what it needs (libnvrtc, g++, a GPU)
//! says so and passes, unless that resource is required there, when it fails.

/// What a test may need that a machine may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// libnvrtc.so.13 on the loader path.
    Nvrtc,
    /// g++, for the CPU emulator of CUDA launches.
    Emulator,
    /// A CUDA device and its driver.
    Gpu,
}

impl Need {
    /// The variable that, set to 1, makes this need a requirement: the CI machine sets the
    /// first two, the GPU machine the third.
    pub fn var(self) -> &'static str {
        match self {
            Need::Nvrtc => "KESTREL_REQUIRE_NVRTC",
            Need::Emulator => "KESTREL_REQUIRE_EMU",
            Need::Gpu => "REQUIRE_CUDA",
        }
    }

    /// Whether this machine must have it (its variable is 1).
    pub fn required(self) -> bool {
        std::env::var(self.var()).is_ok_and(|v| v == "1")
    }
}

/// `need` is missing (`why`): prints `skipping {what}: {why}` for the caller to return, or,
/// when it is required, panics with `{what}: {VAR}=1 but {why}`. A missing GPU reads
/// `no CUDA device ({why})`.
#[track_caller]
pub fn require_or_skip(need: Need, what: &str, why: &str) {
    let missing = match need {
        Need::Gpu => format!("no CUDA device ({why})"),
        Need::Nvrtc | Need::Emulator => why.to_string(),
    };
    if need.required() {
        panic!("{what}: {}=1 but {missing}", need.var());
    }
    println!("skipping {what}: {missing}");
}
