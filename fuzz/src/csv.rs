//! AFL++ target: any bytes through the CSV reader (label by default, and named `a`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        smrt_fuzz_cases::csv(data);
    });
}

#[path = "../cases.rs"]
mod smrt_fuzz_cases;
