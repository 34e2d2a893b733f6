//! Checks `docs/FORMAT.md`, *Type information*: the worked example is what
//! [`TypeTableBuilder`] writes, byte for byte, and reads back as the text it shows; the tables
//! of the three structures give the offsets and sizes of `typeinfo.rs`'s raw structs.

use std::path::PathBuf;

use smf_format::typeinfo::{CallConv, Field, TypeInfo, TypeTableBuilder};

const MARKER: &str = "<!-- typeinfo-example -->";

fn doc() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/FORMAT.md");
    std::fs::read_to_string(path).unwrap()
}

/// The example of the doc, built as the doc's code says.
fn example() -> (Vec<u8>, u32, u32) {
    let mut types = TypeTableBuilder::new();
    let long = types.int(8, true); // 1
    let int = types.int(4, true); // 2
    let point = types.declare_record(false, "point"); // 3
    let field = |name: &str, offset| Field {
        name: name.into(),
        ty: int,
        offset,
        bit_offset: 0,
        bit_size: 0,
    };
    types
        .define_record(point, 8, 4, &[field("x", 0), field("y", 4)])
        .unwrap();
    let add = types.function(CallConv::C, long, &[long, long], false); // 4
    (types.encode(), point, add)
}

/// 16 bytes a line: offset, hex bytes in pairs, as `xxd` prints them (without the text column).
fn dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk
            .chunks(2)
            .map(|pair| pair.iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        out.push_str(&format!("{:04x}: {}\n", i * 16, hex.join(" ")));
    }
    out
}

fn block_after<'d>(doc: &'d str, marker: &str) -> &'d str {
    let at = doc
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in FORMAT.md"));
    let rest = &doc[at..];
    let open = rest.find("```").unwrap();
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    &body[..body.find("```").unwrap()]
}

#[test]
fn the_worked_example_is_what_the_builder_writes() {
    let (bytes, point, add) = example();
    let doc = doc();
    let documented = block_after(&doc, MARKER);
    assert_eq!(
        documented,
        dump(&bytes),
        "docs/FORMAT.md, Type information: the example's bytes"
    );
    let info = TypeInfo::parse(&bytes).unwrap();
    assert_eq!(info.display(add), "fn(i64, i64) -> i64");
    assert_eq!(
        info.describe_record(point).unwrap(),
        "struct point { x: i32 @0, y: i32 @4 } (8 bytes, align 4)"
    );
    for shown in [
        "fn(i64, i64) -> i64",
        "struct point { x: i32 @0, y: i32 @4 } (8 bytes, align 4)",
    ] {
        assert!(doc.contains(shown), "FORMAT.md shows {shown}");
    }
}

/// (field, offset, size) rows of the table after `marker`.
fn table(doc: &str, marker: &str) -> Vec<(String, u64, u64)> {
    let at = doc
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in FORMAT.md"));
    doc[at..]
        .lines()
        .skip(3)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let number = |s: &str| {
                let s = s.trim_start_matches("0x");
                u64::from_str_radix(s, if cells[1].starts_with("0x") { 16 } else { 10 }).unwrap()
            };
            (
                cells[4].trim_matches('`').to_owned(),
                number(cells[1]),
                cells[2].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_structure_tables_match_the_raw_structs() {
    let doc = doc();
    let expect = |fields: &[(&str, u64)]| {
        let mut offset = 0;
        fields
            .iter()
            .map(|&(name, size)| {
                let row = (name.to_owned(), offset, size);
                offset += size;
                row
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        table(&doc, "<!-- typeinfo-struct: header -->"),
        expect(&[
            ("version", 4),
            ("type_count", 4),
            ("member_count", 4),
            ("strings_size", 4)
        ])
    );
    assert_eq!(size_of::<smf_format::typeinfo::RawTypeHeader>(), 16);
    assert_eq!(
        table(&doc, "<!-- typeinfo-struct: type -->"),
        expect(&[
            ("kind", 1),
            ("flags", 1),
            ("conv", 1),
            ("reserved", 1),
            ("name", 4),
            ("size", 8),
            ("target", 4),
            ("align", 4),
            ("first", 4),
            ("count", 4)
        ])
    );
    assert_eq!(size_of::<smf_format::typeinfo::RawType>(), 32);
    assert_eq!(
        table(&doc, "<!-- typeinfo-struct: member -->"),
        expect(&[
            ("name", 4),
            ("type", 4),
            ("offset", 8),
            ("bit_offset", 2),
            ("bit_size", 2),
            ("reserved", 4)
        ])
    );
    assert_eq!(size_of::<smf_format::typeinfo::RawMember>(), 24);
}
