use simple_loader::LoadOptions;
use smf_bench::csource::{LibrarySpec, library};
use std::time::Instant;
fn main() {
    let dir = std::path::Path::new("/tmp/prof");
    std::fs::create_dir_all(dir).unwrap();
    let large = std::env::args().nth(1).as_deref() != Some("small");
    let spec = if large {
        LibrarySpec {
            files: 8,
            functions: 320,
            statements: 12,
            export_every: 8,
            version: 1,
        }
    } else {
        LibrarySpec {
            files: 1,
            functions: 16,
            statements: 4,
            export_every: 4,
            version: 1,
        }
    };
    let name = if large { "large" } else { "small" };
    let smf = dir.join(format!("{name}.smf"));
    if !smf.exists() {
        smf_bench::fixture::build_pair(dir, name, &library(&spec), &[], false).unwrap();
    }
    let hash = std::env::var("HASH").is_ok();
    let opts = LoadOptions {
        verify_hash: hash,
        ..LoadOptions::default()
    };
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut t = Vec::new();
    for _ in 0..n {
        let s = Instant::now();
        let m = simple_loader::load_file(&smf, &opts).unwrap();
        std::hint::black_box(m.export("bench_entry").unwrap());
        t.push(s.elapsed().as_nanos() as f64);
        drop(m);
    }
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    eprintln!("median load {:.1} us", t[n / 2] / 1000.0);
    if std::env::var("PHASES").is_ok() {
        let names = [
            "parse",
            "hash+imports",
            "map",
            "attach",
            "ctors",
            "symbols",
            "unwind",
            "jit",
            "perfmap+insert",
        ];
        for (i, n2) in names.iter().enumerate() {
            eprintln!(
                "  {n2:16} {:8.1} us",
                simple_loader::PHASES[i].load(std::sync::atomic::Ordering::Relaxed) as f64
                    / n as f64
                    / 1000.0
            );
        }
    }
}
