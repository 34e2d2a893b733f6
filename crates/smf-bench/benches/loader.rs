//! `cargo bench -p smf-bench`: the SMF loader against the system loader, interleaved.
//! `SMF_BENCH_QUICK=1` runs every measurement with few samples; `SMF_BENCH_ONLY=word` runs
//! only the sections whose name contains `word` (load, lookup, pack, run, reload, slot,
//! memory, scaling).

fn main() {
    let config = smf_bench::Config::from_env(vec![env!("CARGO_BIN_EXE_smf-bench-pack").into()]);
    match smf_bench::run(&config) {
        Ok(output) => print!("{}", output.render()),
        Err(e) => {
            eprintln!("smf-bench: {e}");
            std::process::exit(1);
        }
    }
}
