//! Samples, medians, targets, and the tables the benchmark prints.

use std::fmt::Write;

/// Measurements of one quantity, in nanoseconds (or bytes for memory rows).
#[derive(Debug, Clone, Default)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    pub fn median(&self) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }
}

/// What a row must reach.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// SMF / system at most this ratio.
    RatioAtMost(f64),
    /// SMF − system at most this many nanoseconds.
    ExtraNsAtMost(f64),
    /// SMF value at most this many bytes.
    BytesAtMost(f64),
}

impl Target {
    fn describe(self) -> String {
        match self {
            Target::RatioAtMost(r) => format!("≤ {r:.2}×"),
            Target::ExtraNsAtMost(ns) => format!("≤ +{ns} ns"),
            Target::BytesAtMost(b) => format!("≤ {}", bytes(b)),
        }
    }

    /// Whether `smf` (against `system`) meets the target, and by how much it misses if not.
    fn check(self, system: Option<f64>, smf: f64) -> (bool, String) {
        match self {
            Target::RatioAtMost(limit) => {
                let ratio = smf / system.unwrap_or(f64::NAN);
                if ratio <= limit {
                    (true, "met".into())
                } else {
                    (
                        false,
                        format!("missed by {:.0}%", (ratio / limit - 1.0) * 100.0),
                    )
                }
            }
            Target::ExtraNsAtMost(limit) => {
                let extra = smf - system.unwrap_or(f64::NAN);
                if extra <= limit {
                    (true, "met".into())
                } else {
                    (false, format!("missed by {:.2} ns", extra - limit))
                }
            }
            Target::BytesAtMost(limit) => {
                if smf <= limit {
                    (true, "met".into())
                } else {
                    (false, format!("missed by {}", bytes(smf - limit)))
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Nanos,
    Bytes,
    /// A number of events (page faults).
    Count,
}

/// One line of a table: a system-loader value (if there is a counterpart), an SMF value,
/// their ratio, and the target.
#[derive(Debug, Clone)]
pub struct Row {
    pub what: String,
    pub system: Option<f64>,
    pub smf: f64,
    pub unit: Unit,
    pub target: Option<Target>,
}

impl Row {
    pub fn timed(
        what: impl Into<String>,
        system: Option<&Samples>,
        smf: &Samples,
        target: Option<Target>,
    ) -> Row {
        Row {
            what: what.into(),
            system: system.map(Samples::median),
            smf: smf.median(),
            unit: Unit::Nanos,
            target,
        }
    }

    /// `Some(met)` when the row has a target.
    pub fn met(&self) -> Option<bool> {
        self.target.map(|t| t.check(self.system, self.smf).0)
    }
}

pub fn duration(ns: f64) -> String {
    if ns.is_nan() {
        "—".into()
    } else if ns < 10.0 {
        format!("{ns:.2} ns")
    } else if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

pub fn bytes(b: f64) -> String {
    let sign = if b < 0.0 { "-" } else { "" };
    let b = b.abs();
    if b < 10_000.0 {
        format!("{sign}{b:.0} B")
    } else if b < 10_000_000.0 {
        format!("{sign}{:.1} KiB", b / 1024.0)
    } else {
        format!("{sign}{:.1} MiB", b / 1048576.0)
    }
}

fn value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Nanos => duration(v),
        Unit::Bytes => bytes(v),
        Unit::Count => format!("{v:.0}"),
    }
}

/// A titled table of rows, printed as Markdown so that it can be copied into a README as is.
#[derive(Debug, Clone)]
pub struct Table {
    pub title: String,
    pub system_column: String,
    pub smf_column: String,
    pub rows: Vec<Row>,
}

impl Table {
    pub fn new(
        title: impl Into<String>,
        system_column: impl Into<String>,
        smf_column: impl Into<String>,
    ) -> Table {
        Table {
            title: title.into(),
            system_column: system_column.into(),
            smf_column: smf_column.into(),
            rows: Vec::new(),
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.title);
        let _ = writeln!(
            out,
            "| measurement | {} | {} | ratio | target | result |",
            self.system_column, self.smf_column
        );
        out.push_str("|---|---:|---:|---:|---|---|\n");
        for row in &self.rows {
            let system = row.system.map_or("—".into(), |v| value(row.unit, v));
            let ratio = row
                .system
                .filter(|&s| s != 0.0)
                .map_or("—".into(), |s| format!("{:.2}×", row.smf / s));
            let (target, result) = match row.target {
                Some(t) => (t.describe(), t.check(row.system, row.smf).1),
                None => ("—".into(), "—".into()),
            };
            let _ = writeln!(
                out,
                "| {} | {system} | {} | {ratio} | {target} | {result} |",
                row.what,
                value(row.unit, row.smf)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_targets() {
        assert_eq!(Samples(vec![3.0, 1.0, 2.0]).median(), 2.0);
        assert_eq!(Samples(vec![4.0, 1.0, 2.0, 3.0]).median(), 2.5);
        assert!(Samples::default().median().is_nan());
        assert_eq!(
            Target::RatioAtMost(0.5).check(Some(100.0), 50.0),
            (true, "met".into())
        );
        assert_eq!(
            Target::RatioAtMost(0.5).check(Some(100.0), 75.0),
            (false, "missed by 50%".into())
        );
        assert!(!Target::ExtraNsAtMost(1.0).check(Some(2.0), 3.5).0);
        assert!(Target::BytesAtMost(4096.0).check(None, 4096.0).0);
        assert!(
            !Target::RatioAtMost(0.5).check(None, 1.0).0,
            "no counterpart cannot meet a ratio"
        );
    }

    #[test]
    fn table_is_markdown() {
        let mut table = Table::new("t", "dlopen", "smf");
        table.rows.push(Row {
            what: "load".into(),
            system: Some(2000.0),
            smf: 500.0,
            unit: Unit::Nanos,
            target: Some(Target::RatioAtMost(0.5)),
        });
        let text = table.render();
        assert!(
            text.contains("| load | 2.0 µs | 500.0 ns | 0.25× | ≤ 0.50× | met |"),
            "{text}"
        );
    }
}
