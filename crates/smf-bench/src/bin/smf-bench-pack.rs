//! `smf pack -o OUT [--reloadable] [--needed LIB]... INPUT.o...` as its own small program, so
//! that the benchmark can time packing as a child process against `cc -shared`, with a
//! packer built by the same `cargo bench` run (a stale `smf` binary would time old code).
//! It does what the `smf` binary's `pack` command does: read the inputs, pack, write.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut output = None;
    let mut options = smf_pack::Options::default();
    let mut inputs = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-o" => output = args.next(),
            "--reloadable" => options.reloadable = true,
            "--needed" => options.needed.extend(args.next()),
            _ => inputs.push(arg),
        }
    }
    let Some(output) = output else {
        eprintln!("usage: smf-bench-pack -o OUT [--reloadable] [--needed LIB]... INPUT.o...");
        return ExitCode::from(2);
    };
    let mut objects = Vec::with_capacity(inputs.len());
    for name in inputs {
        match std::fs::read(&name) {
            Ok(data) => objects.push(smf_pack::Input { name, data }),
            Err(e) => {
                eprintln!("{name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let bytes = match smf_pack::pack(&objects, &options) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(&output, bytes) {
        eprintln!("{output}: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
