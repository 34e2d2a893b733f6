//! Checks the worked example of docs/FORMAT.md against the writer: the module described there
//! is built with the `ModuleBuilder`, dumped like `xxd -a`, and compared with the fenced
//! block that follows the `<!-- worked-example -->` marker.
//!
//! `SMF_BLESS=1 cargo test -p smf-format --test format_doc` rewrites the block from the
//! writer's output; review the diff of the prose around it too, since it decodes the bytes.

use std::path::PathBuf;

use smf_format::*;

const MARKER: &str = "<!-- worked-example -->";

/// The module of the worked example, exactly as docs/FORMAT.md describes it.
fn worked_example() -> Vec<u8> {
    let mut builder = ModuleBuilder::new();
    builder.platform = Platform::Linux;
    builder.arch = Arch::X86_64;
    builder.flags = ModuleFlags::PIC;
    builder.source_hash = 0x0123_4567_89ab_cdef;
    let code = vec![0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3]; // mov eax, 42; ret
    let mut layout = ImageLayout::new();
    let vaddr = layout.place(code.len() as u64).unwrap();
    let text = builder.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr,
        mem_size: code.len() as u64,
        align: 16,
        data: code,
    });
    builder.add_symbol(Symbol {
        name: "answer",
        kind: SymbolKind::Function,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(text),
        value: vaddr,
        size: 6,
        type_id: 0,
        version: 0,
    });
    builder.add_import(Import {
        name: "puts",
        kind: ImportKind::Function,
        binding: Binding::Global,
        type_id: 0,
        version: 0,
    });
    builder.write().unwrap()
}

/// Formats `bytes` as `xxd -a` does: 16 bytes a line in groups of two, the offset, the
/// printable characters; a run of all-zero lines is shown as its first line and a `*`
/// (a run of exactly two shows both; the last line of the file is always shown).
fn xxd_a(bytes: &[u8]) -> String {
    let line = |offset: usize, chunk: &[u8]| {
        let mut hex = String::new();
        for (i, b) in chunk.iter().enumerate() {
            if i > 0 && i % 2 == 0 {
                hex.push(' ');
            }
            hex.push_str(&format!("{b:02x}"));
        }
        let text: String = chunk
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        format!("{offset:08x}: {hex:<39}  {text}\n")
    };
    // A port of xxd's `xxdline` state machine: `nz` is 1 for a line with a non-zero byte
    // (or a partial last line), 0 for an all-zero line, -1 for the end-of-file flush.
    let mut out = String::new();
    let mut zero_seen = 0;
    let mut saved = String::new();
    let mut emit = |l: &str, nz: i32, out: &mut String| {
        if nz == 0 && zero_seen == 1 {
            saved = l.to_owned();
        }
        let print = nz != 0 || {
            zero_seen += 1;
            zero_seen == 1
        };
        if print {
            if nz != 0 {
                if nz < 0 {
                    zero_seen -= 1;
                }
                if zero_seen == 2 {
                    out.push_str(&saved);
                }
                if zero_seen > 2 {
                    out.push_str("*\n");
                }
            }
            if nz >= 0 || zero_seen > 0 {
                out.push_str(l);
            }
            if nz != 0 {
                zero_seen = 0;
            }
        }
    };
    let mut last = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        last = line(i * 16, chunk);
        let nz = if chunk.len() < 16 || chunk.iter().any(|&b| b != 0) {
            1
        } else {
            0
        };
        emit(&last, nz, &mut out);
    }
    if bytes.len() % 16 == 0 {
        emit(&last, -1, &mut out);
    }
    out
}

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/FORMAT.md")
}

/// The byte range of the body of the fenced block after the marker (between the fence lines).
fn block_range(doc: &str) -> Result<std::ops::Range<usize>, String> {
    let marker = doc
        .find(MARKER)
        .ok_or_else(|| format!("no {MARKER} line in docs/FORMAT.md"))?;
    let after = &doc[marker + MARKER.len()..];
    let open = after
        .find("```")
        .ok_or("no fenced block after the marker")?;
    let body = marker
        + MARKER.len()
        + open
        + after[open..].find('\n').ok_or("unterminated fence line")?
        + 1;
    let close = if doc[body..].starts_with("```") {
        body
    } else {
        doc[body..]
            .find("\n```")
            .map(|i| body + i + 1)
            .ok_or("the fenced block is not closed")?
    };
    Ok(body..close)
}

/// A line diff good enough for a hex dump: lines are compared in order, and every line from the
/// first difference on is shown with its counterpart.
fn diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = String::new();
    for i in 0..e.len().max(a.len()) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                if let Some(x) = x {
                    out.push_str(&format!("line {:>3} doc:    {x}\n", i + 1));
                }
                if let Some(y) = y {
                    out.push_str(&format!("line {:>3} writer: {y}\n", i + 1));
                }
            }
        }
    }
    out
}

#[test]
fn the_worked_example_matches_the_writer() {
    let bytes = worked_example();
    let dump = xxd_a(&bytes);
    let path = doc_path();
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let range = block_range(&doc).unwrap();
    if std::env::var_os("SMF_BLESS").is_some_and(|v| v == "1") {
        if doc[range.clone()] != dump {
            let mut updated = doc.clone();
            updated.replace_range(range, &dump);
            std::fs::write(&path, updated).unwrap();
            eprintln!(
                "rewrote the worked example in {}; check the annotations around it",
                path.display()
            );
        }
        return;
    }
    let documented = &doc[range];
    assert!(
        documented == dump,
        "the worked example in docs/FORMAT.md differs from the writer's output:\n{}\n\
         If the format change is intended, run `SMF_BLESS=1 cargo test -p smf-format --test format_doc` \
         and update the annotations.",
        diff(documented, &dump)
    );
}

#[test]
fn the_worked_example_is_what_the_doc_says() {
    // The facts the prose around the dump states, checked on the module itself.
    let bytes = worked_example();
    assert_eq!(bytes.len(), 0x1006);
    let module = Module::parse(&bytes).unwrap();
    module.verify_hash().unwrap();
    let kinds: Vec<_> = module
        .sections()
        .iter()
        .map(|s| (s.kind, s.name, s.file_offset, s.file_size))
        .collect();
    assert_eq!(
        kinds,
        [
            (SectionKind::Code, ".text", 0x1000, 6),
            (SectionKind::StrTab, ".strtab", 0x1c0, 13),
            (SectionKind::SymTab, ".symtab", 0x1d0, 40),
            (SectionKind::Hash, ".hash", 0x1f8, 16),
            (SectionKind::Imports, ".imports", 0x208, 24),
        ]
    );
    assert_eq!(module.header().image_size, 0x1000);
    assert_eq!(fnv1a32(b"answer"), 0x8480_19df);
    assert_eq!(fnv1a32(b"puts"), 0x9c67_d227);
    assert_eq!(
        module.lookup("answer").map(|s| (s.value, s.size)),
        Some((0, 6))
    );
}

#[test]
fn the_dump_format_is_xxd_a() {
    // Zero runs of every length, at the start, in the middle and at the end, full and partial
    // last lines.
    let mut cases: Vec<Vec<u8>> = vec![vec![], vec![0], vec![1; 16], vec![0; 16]];
    for zeros in 1..=5 {
        for tail in [0usize, 1, 16, 17] {
            let mut bytes = vec![0x41; 16];
            bytes.extend(vec![0; zeros * 16]);
            bytes.extend(vec![0x7f; tail]);
            cases.push(bytes.clone());
            cases.push(bytes[16..].to_vec());
        }
    }
    let expected_by_hand = "00000000: 4141 4141 4141 4141 4141 4141 4141 4141  AAAAAAAAAAAAAAAA\n\
                            00000010: 0000 0000 0000 0000 0000 0000 0000 0000  ................\n\
                            *\n\
                            00000050: 7f                                       .\n";
    let mut bytes = vec![0x41; 16];
    bytes.extend([0; 64]);
    bytes.push(0x7f);
    assert_eq!(xxd_a(&bytes), expected_by_hand);

    // Where xxd is installed, compare with it too.
    let dir = std::env::temp_dir().join(format!("smf-format-xxd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, case) in cases.iter().chain([&worked_example()]).enumerate() {
        let file = dir.join(format!("case{i}"));
        std::fs::write(&file, case).unwrap();
        let Ok(output) = std::process::Command::new("xxd")
            .arg("-a")
            .arg(&file)
            .output()
        else {
            eprintln!("xxd is not installed: compared with the hand-written expectation only");
            break;
        };
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            xxd_a(case),
            "case {i}: {case:02x?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- The structure and enum tables of the specification ---------------------------------

/// The body rows of the Markdown table that follows `marker`, split into trimmed cells with
/// backticks removed.
fn doc_table(doc: &str, marker: &str) -> Vec<Vec<String>> {
    let start = doc
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in docs/FORMAT.md"));
    doc[start + marker.len()..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().replace('`', ""))
                .collect()
        })
        .collect()
}

fn parse_number(text: &str) -> u64 {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .unwrap_or_else(|_| panic!("{text:?} is not a number"))
}

/// Size of a field type as the tables spell it: `u8`, `u32`, `u64`, `i64` or `[u8; N]`.
fn type_size(ty: &str) -> u64 {
    match ty {
        "u8" => 1,
        "u32" => 4,
        "u64" | "i64" => 8,
        _ => parse_number(
            ty.strip_prefix("[u8; ")
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or_else(|| panic!("unknown type {ty:?}")),
        ),
    }
}

/// (field, offset, size) of every field of a raw structure, from the compiler.
macro_rules! layout {
    ($ty:ty { $($field:ident),+ $(,)? }) => {{
        let value = <$ty as zerocopy::FromZeros>::new_zeroed();
        let fields: Vec<(String, u64, u64)> = vec![$(
            (stringify!($field).to_owned(), core::mem::offset_of!($ty, $field) as u64, size_of_val(&value.$field) as u64),
        )+];
        let total: u64 = fields.iter().map(|f| f.2).sum();
        assert_eq!(total, size_of::<$ty>() as u64, "{} has fields missing from the check", stringify!($ty));
        fields
    }};
}

#[test]
fn the_structure_tables_match_the_raw_structs() {
    use smf_format::raw;
    let doc = std::fs::read_to_string(doc_path()).unwrap();
    let structs = [
        (
            "Header",
            layout!(raw::Header {
                magic,
                version_major,
                version_minor,
                platform,
                arch,
                flags,
                section_count,
                section_table_offset,
                image_size,
                entry_point,
                source_hash,
                module_hash,
                page_order,
                reserved
            }),
        ),
        (
            "SectionHeader",
            layout!(raw::SectionHeader {
                kind,
                flags,
                file_offset,
                file_size,
                vaddr,
                mem_size,
                align,
                name
            }),
        ),
        (
            "Symbol",
            layout!(raw::Symbol {
                name_offset,
                name_hash,
                kind,
                binding,
                visibility,
                flags,
                section,
                value,
                size,
                type_id,
                version
            }),
        ),
        (
            "Import",
            layout!(raw::Import {
                name_offset,
                name_hash,
                kind,
                binding,
                reserved0,
                type_id,
                version,
                reserved1
            }),
        ),
        (
            "Reloc",
            layout!(raw::Reloc {
                offset,
                kind,
                import,
                addend
            }),
        ),
        (
            "HashHeader",
            layout!(raw::HashHeader {
                bucket_count,
                chain_count
            }),
        ),
        (
            "RuntimeFunction",
            layout!(raw::RuntimeFunction {
                begin,
                end,
                unwind_info
            }),
        ),
        (
            "CompressedHeader",
            layout!(raw::CompressedHeader {
                algorithm,
                reserved,
                raw_size
            }),
        ),
        (
            "RawVersionHeader",
            layout!(smf_format::version::RawVersionHeader {
                format,
                name_offset,
                version_count,
                dependency_count,
                strings_size,
                reserved
            }),
        ),
        (
            "Fingerprint",
            layout!(raw::Fingerprint {
                symbol,
                reserved,
                fingerprint
            }),
        ),
        (
            "RawVersion",
            layout!(smf_format::version::RawVersion {
                major,
                minor,
                patch,
                reserved
            }),
        ),
        (
            "RawDependency",
            layout!(smf_format::version::RawDependency {
                name_offset,
                op,
                reserved0,
                major,
                minor,
                patch,
                reserved1
            }),
        ),
    ];
    for (name, fields) in structs {
        let rows = doc_table(&doc, &format!("<!-- struct: {name} -->"));
        let documented: Vec<(String, u64, u64)> = rows
            .iter()
            .map(|r| {
                let size = parse_number(&r[1]);
                assert_eq!(
                    type_size(&r[2]),
                    size,
                    "{name}.{}: type {} and size {size} disagree",
                    r[3],
                    r[2]
                );
                (r[3].clone(), parse_number(&r[0]), size)
            })
            .collect();
        assert_eq!(
            documented, fields,
            "the table of {name} in docs/FORMAT.md (field, offset, size)"
        );
    }
}

#[test]
fn the_enum_tables_match_the_types() {
    let doc = std::fs::read_to_string(doc_path()).unwrap();
    let check = |name: &str, values: Vec<(u64, &str)>| {
        let rows = doc_table(&doc, &format!("<!-- enum: {name} -->"));
        let documented: Vec<(u64, &str)> = rows
            .iter()
            .map(|r| (parse_number(&r[0]), r[1].as_str()))
            .collect();
        assert_eq!(
            documented, values,
            "the {name} table in docs/FORMAT.md (value, name)"
        );
    };
    check(
        "Platform",
        Platform::ALL
            .iter()
            .map(|v| (v.as_raw() as u64, v.name()))
            .collect(),
    );
    check(
        "Arch",
        Arch::ALL
            .iter()
            .map(|v| (v.as_raw() as u64, v.name()))
            .collect(),
    );
    check(
        "SectionKind",
        SectionKind::ALL
            .iter()
            .map(|v| (v.as_raw() as u64, v.name()))
            .collect(),
    );
    check(
        "SymbolKind",
        SymbolKind::ALL
            .iter()
            .map(|v| (v.as_raw() as u64, v.name()))
            .collect(),
    );
    check(
        "Binding",
        Binding::ALL
            .iter()
            .map(|v| (v.as_raw() as u64, v.name()))
            .collect(),
    );
    check(
        "Visibility",
        Visibility::ALL
            .iter()
            .map(|v| (v.as_raw() as u64, v.name()))
            .collect(),
    );
    check(
        "ImportKind",
        ImportKind::ALL
            .iter()
            .map(|v| (v.as_raw() as u64, v.name()))
            .collect(),
    );
    check(
        "RelocKind",
        RelocKind::ALL
            .iter()
            .map(|v| (v.as_raw() as u64, v.name()))
            .collect(),
    );

    // Which kinds are loaded, and their final protection.
    for (row, kind) in doc_table(&doc, "<!-- enum: SectionKind -->")
        .iter()
        .zip(SectionKind::ALL)
    {
        assert_eq!(
            row[2] == "yes",
            kind.is_loaded(),
            "{kind}: the Loaded column"
        );
        assert_eq!(
            row[3],
            kind.protection().to_string(),
            "{kind}: the Protection column"
        );
    }

    let flags: Vec<(u64, String)> = doc_table(&doc, "<!-- flags: ModuleFlags -->")
        .iter()
        .map(|r| (parse_number(&r[0]), r[1].clone()))
        .collect();
    let known = [
        ModuleFlags::EXECUTABLE,
        ModuleFlags::RELOADABLE,
        ModuleFlags::DEBUG_INFO,
        ModuleFlags::PIC,
        ModuleFlags::COMPRESSED,
    ];
    assert_eq!(
        flags,
        known
            .iter()
            .map(|f| (f.0 as u64, f.to_string()))
            .collect::<Vec<_>>(),
        "the module flags table"
    );
    assert_eq!(
        known.iter().fold(0, |all, f| all | f.0),
        ModuleFlags::KNOWN.0
    );
}
