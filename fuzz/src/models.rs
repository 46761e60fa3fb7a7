//! AFL++ target: any bytes through the model loader (metadata and weights split as
//! `cases.rs` says).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        smrt_fuzz_cases::models(data);
    });
}

#[path = "../cases.rs"]
mod smrt_fuzz_cases;
