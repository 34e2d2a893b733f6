//! SQLite 3.49's module packed with `--compress` (and `--compress=data`): at least twice
//! smaller than packed without, and it runs SQL queries exactly as the uncompressed module
//! does. SQLite is compiled as the benchmark compiles it (`cc -O2 -fPIC`).

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;

use smf_bench::{fixture, realcode};
use smf_format::Compression;

/// SQL touching the parser, the B-tree, indexes, the VM's arithmetic and string functions,
/// printf, JSON and aggregates.
const SQL: &str = "
CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
  INSERT INTO t SELECT i, printf('row-%05d', i), i * 0.5 FROM n;
CREATE INDEX tb ON t(b);
SELECT count(*), sum(a), total(c), min(b), max(b) FROM t;
SELECT b, length(b), upper(b), a % 7 FROM t WHERE a % 397 = 0 ORDER BY b DESC;
SELECT group_concat(a, ',') FROM (SELECT a FROM t WHERE b LIKE 'row-0001%' ORDER BY a);
SELECT json_object('n', count(*), 'avg', avg(c), 'max', max(a)) FROM t;
UPDATE t SET c = c * 2 WHERE a > 1990;
DELETE FROM t WHERE a % 2 = 0;
SELECT count(*), sum(c), printf('%.3f', avg(c)) FROM t;
SELECT sqlite_version(), abs(-5), round(3.14159, 2), substr('hello', 2, 3), hex('SMF');
";

/// Rows as `a|b|c` lines.
extern "C" fn collect(
    out: *mut c_void,
    columns: c_int,
    values: *mut *mut c_char,
    _names: *mut *mut c_char,
) -> c_int {
    // SAFETY: `out` is the `String` `run` passes; SQLite gives `columns` values, each null
    // or a NUL-terminated string, valid during the call.
    unsafe {
        let out = &mut *out.cast::<String>();
        let row: Vec<String> = (0..columns as usize)
            .map(|i| {
                let v = *values.add(i);
                if v.is_null() {
                    "NULL".to_owned()
                } else {
                    CStr::from_ptr(v).to_string_lossy().into_owned()
                }
            })
            .collect();
        out.push_str(&row.join("|"));
        out.push('\n');
    }
    0
}

type Open = extern "C" fn(*const c_char, *mut *mut c_void) -> c_int;
type Exec = extern "C" fn(
    *mut c_void,
    *const c_char,
    extern "C" fn(*mut c_void, c_int, *mut *mut c_char, *mut *mut c_char) -> c_int,
    *mut c_void,
    *mut *mut c_char,
) -> c_int;
type Close = extern "C" fn(*mut c_void) -> c_int;

/// Loads the module at `path` (hash checked) and runs [`SQL`] on an in-memory database.
fn run(path: &Path) -> String {
    let options = simple_loader::LoadOptions::default().with_verify_hash(true);
    // SAFETY: SQLite's own code, compiled by this test; the file is never rewritten.
    let module = unsafe { simple_loader::load(path, &options, None) }.unwrap();
    // SAFETY: the signatures are SQLite's documented C API.
    let (open, exec, close) = unsafe {
        (
            module.get::<Open>("sqlite3_open").unwrap(),
            module.get::<Exec>("sqlite3_exec").unwrap(),
            module.get::<Close>("sqlite3_close").unwrap(),
        )
    };
    let mut db = std::ptr::null_mut();
    let name = CString::new(":memory:").unwrap();
    assert_eq!(open(name.as_ptr(), &mut db), 0);
    let mut out = String::new();
    let sql = CString::new(SQL).unwrap();
    let mut error = std::ptr::null_mut();
    let status = exec(db, sql.as_ptr(), collect, (&raw mut out).cast(), &mut error);
    assert_eq!(status, 0, "sqlite3_exec failed");
    assert_eq!(close(db), 0);
    out
}

#[test]
fn compressed_sqlite_is_half_the_size_and_runs_identically() {
    let library = realcode::sqlite().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let objects = fixture::compile_files(dir.path(), &library.sources, library.flags).unwrap();
    let level = smf_format::compress::DEFAULT_LEVEL;
    let pack = |name: &str, compression| {
        let path = dir.path().join(name);
        let bytes = fixture::pack_compressed(&objects, library.needed, compression, &path).unwrap();
        (path, bytes.len())
    };
    let (plain, plain_size) = pack("sqlite.smf", Compression::None);
    let (all, all_size) = pack("sqlite-z.smf", Compression::All { level });
    let (data, data_size) = pack("sqlite-zdata.smf", Compression::AllButCode { level });
    eprintln!(
        "{}: {plain_size} bytes, --compress {all_size} ({:.2}x smaller), --compress=data \
         {data_size}",
        library.version,
        plain_size as f64 / all_size as f64
    );
    assert!(
        all_size * 2 <= plain_size,
        "--compress: {all_size} bytes against {plain_size}"
    );
    assert!(data_size < plain_size);

    let expected = run(&plain);
    assert!(
        expected.starts_with("2000|2001000|1000500.0|row-00001|row-02000\n"),
        "{expected}"
    );
    assert!(expected.contains("\n3.49."), "{expected}");
    assert_eq!(run(&all), expected, "--compress");
    assert_eq!(run(&data), expected, "--compress=data");
}
