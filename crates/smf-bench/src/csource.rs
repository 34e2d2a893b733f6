//! The C code the benchmark builds both ways, generated at run time.
//!
//! Everything is plain C as a library would be written: functions (most `static`, some
//! exported), tables of `{name, function, help}` entries (`const`, so `.data.rel.ro`), arrays
//! of name pointers (not `const`, so `.data`), and calls into the C library. The sizes are
//! parameters, so the same generator gives the small module, the large one, and the scaling
//! series.

use std::fmt::Write;

/// Shape of a generated library.
#[derive(Debug, Clone, Copy)]
pub struct LibrarySpec {
    /// Source files (each compiled to one object).
    pub files: usize,
    /// Functions per file.
    pub functions: usize,
    /// Arithmetic statements per function: about 25 bytes of code each.
    pub statements: usize,
    /// One function in `export_every` is exported; the others are `static`.
    pub export_every: usize,
    /// A constant folded into every function, so that two versions differ in code and data.
    pub version: u64,
}

/// Generates the files of a library. File 0 also defines the entry points the benchmark uses:
///
/// - `long bench_entry(long)`: the "first symbol";
/// - `long bench_inc(long)`: `x + 1`, for the cost of a call;
/// - `long bench_compute(long n)`: `n` table-dispatched calls of generated functions;
/// - `long bench_describe(long)`: formats a table entry with `snprintf` (a C-library call).
pub fn library(spec: &LibrarySpec) -> Vec<(String, String)> {
    (0..spec.files)
        .map(|k| (format!("lib{k}.c"), library_file(spec, k)))
        .collect()
}

fn function_name(spec: &LibrarySpec, file: usize, i: usize) -> String {
    if i % spec.export_every == 0 {
        format!("api{file}_{i}")
    } else {
        format!("f{file}_{i}")
    }
}

/// A deterministic stream of odd 64-bit constants (SplitMix64), so that code differs
/// between functions and the compiler cannot merge them.
fn constants(seed: u64) -> impl Iterator<Item = u64> {
    let mut state = seed;
    std::iter::repeat_with(move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) | 1
    })
}

fn library_file(spec: &LibrarySpec, k: usize) -> String {
    let n = spec.functions;
    let mut c = String::new();
    c.push_str(
        "#include <stddef.h>\n#include <stdio.h>\n#include <string.h>\n\n\
         typedef long (*bench_fn)(long);\n\
         struct bench_entry { const char *name; bench_fn fn; const char *help; };\n\n",
    );
    let mut constants = constants((k as u64) << 32 ^ spec.version);
    for i in 0..n {
        let name = function_name(spec, k, i);
        let storage = if i % spec.export_every == 0 {
            ""
        } else {
            "static "
        };
        let _ = writeln!(
            c,
            "{storage}long {name}(long x) {{\n    unsigned long a = (unsigned long)x + {}UL;",
            spec.version
        );
        for s in 0..spec.statements {
            let (c1, c2) = (constants.next().unwrap_or(1), constants.next().unwrap_or(1));
            let shift = 7 + (s * 5 + i) % 40;
            let _ = writeln!(c, "    a = (a ^ (a >> {shift})) * {c1:#x}UL + {c2:#x}UL;");
        }
        c.push_str("    return (long)(a >> 1);\n}\n");
    }
    let _ = writeln!(c, "\nconst struct bench_entry table{k}[{n}] = {{");
    for i in 0..n {
        let name = function_name(spec, k, i);
        let _ = writeln!(
            c,
            "    {{\"{name}\", {name}, \"{name}: generated function {i} of file {k}, version {}\"}},",
            spec.version
        );
    }
    c.push_str("};\n");
    let _ = writeln!(c, "\nconst char *names{k}[{n}] = {{");
    for i in 0..n {
        let _ = writeln!(c, "    \"{}\",", function_name(spec, k, i));
    }
    c.push_str("};\n");
    let _ = write!(
        c,
        "\nlong lookup{k}(const char *name) {{\n\
         \x20   for (size_t i = 0; i < {n}; i++)\n\
         \x20       if (strcmp(table{k}[i].name, name) == 0) return table{k}[i].fn((long)i);\n\
         \x20   return -1;\n}}\n\
         long dispatch{k}(long i, long x) {{ return table{k}[(unsigned long)i % {n}].fn(x); }}\n\
         const char *name_of{k}(long i) {{ return names{k}[(unsigned long)i % {n}]; }}\n"
    );
    if k == 0 {
        let _ = write!(
            c,
            "\nlong bench_entry(long x) {{ return table0[0].fn(x); }}\n\
             long bench_inc(long x) {{ return x + 1; }}\n\
             long bench_compute(long n) {{\n\
             \x20   unsigned long acc = 1;\n\
             \x20   for (long i = 0; i < n; i++)\n\
             \x20       acc += (unsigned long)table0[(acc ^ (unsigned long)i) % {n}].fn((long)(acc + (unsigned long)i));\n\
             \x20   return (long)acc;\n}}\n\
             long bench_describe(long i) {{\n\
             \x20   char buffer[256];\n\
             \x20   const struct bench_entry *e = &table0[(unsigned long)i % {n}];\n\
             \x20   return snprintf(buffer, sizeof buffer, \"%s: %s\", e->name, e->help);\n}}\n"
        );
    }
    c
}

/// A library whose only load-time work is `relocations` absolute pointers (one `const`
/// table of pointers into a static buffer), plus `bench_entry`.
pub fn relocations(relocations: usize) -> String {
    let mut c = String::from("static char pool[4096];\nconst void *const pointers[] = {\n");
    for i in 0..relocations {
        let _ = writeln!(c, "    pool + {},", i % 4096);
    }
    let _ = write!(
        c,
        "}};\nlong bench_entry(long i) {{ return (long)pointers[(unsigned long)i % {relocations}]; }}\n"
    );
    c
}

/// The provider of `count` functions `long p<i>(long)`, as a native shared library.
pub fn provider(count: usize) -> String {
    let mut c = String::new();
    for i in 0..count {
        let _ = writeln!(c, "long p{i}(long x) {{ return x + {i}; }}");
    }
    c
}

/// A library calling the first `imports` functions of [`provider`] (each an import), with
/// `bench_entry`.
pub fn importer(imports: usize) -> String {
    let mut c = String::new();
    for i in 0..imports {
        let _ = writeln!(c, "extern long p{i}(long);");
    }
    c.push_str("long bench_entry(long x) {\n");
    for i in 0..imports {
        let _ = writeln!(c, "    x = p{i}(x);");
    }
    c.push_str("    return x;\n}\n");
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_one_function_in_n_and_defines_the_entry_points() {
        let spec = LibrarySpec {
            files: 2,
            functions: 9,
            statements: 2,
            export_every: 4,
            version: 7,
        };
        let files = library(&spec);
        assert_eq!(files.len(), 2);
        let (_, first) = &files[0];
        assert!(
            first.contains("long api0_0(long x)") && first.contains("static long f0_1(long x)")
        );
        assert!(first.contains("long api0_8(long x)") && !first.contains("api0_7"));
        assert!(first.contains("long bench_compute(long n)"));
        assert!(
            !files[1].1.contains("long bench_entry("),
            "entry points live in file 0 only"
        );
        assert_eq!(
            first.matches("{\"").count(),
            9,
            "one table entry per function"
        );
    }

    #[test]
    fn versions_differ() {
        let spec = LibrarySpec {
            files: 1,
            functions: 3,
            statements: 2,
            export_every: 2,
            version: 1,
        };
        let other = LibrarySpec { version: 2, ..spec };
        assert_ne!(library(&spec), library(&other));
    }
}
