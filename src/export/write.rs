//! The export table's file formats: CSV (missing values empty), JSON lines (null), HDF5 (one
//! dataset per column, NaN; h5py/pandas-readable through the `columns` attribute).

use std::fmt::Write as _;
use std::path::Path;

use crate::store::columns::{self, Column};
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
    Hdf5,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "jsonl" => Ok(Format::Jsonl),
            "hdf5" | "h5" => Ok(Format::Hdf5),
            other => Err(format!("{other:?}: expected csv, jsonl or hdf5")),
        }
    }
}

/// Writes the table to `path` in `format`; `source` is recorded in the HDF5 file's attributes.
pub fn write(table: &[(String, Column)], format: Format, path: &Path, source: &str) -> Result<()> {
    let rows = table.first().map(|(_, c)| c.len()).unwrap_or(0);
    let text = match format {
        Format::Hdf5 => {
            return columns::write_atomically(path, |f| {
                columns::write_columns(path, f, table)?;
                columns::set_str_attr(path, f, "source", source)?;
                columns::set_str_attr(path, f, "kind", "ayt-export")
            });
        }
        Format::Csv => {
            let mut out = table.iter().map(|(n, _)| csv_field(n)).collect::<Vec<_>>().join(",");
            out.push('\n');
            for i in 0..rows {
                let line: Vec<String> = table.iter().map(|(_, c)| csv_cell(c, i)).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
            out
        }
        Format::Jsonl => {
            let mut out = String::new();
            for i in 0..rows {
                out.push('{');
                for (j, (name, c)) in table.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{}:{}", json_string(name), json_cell(c, i));
                }
                out.push_str("}\n");
            }
            out
        }
    };
    std::fs::write(path, text).map_err(|e| Error::file(path, format!("cannot write: {e}")))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_cell(c: &Column, i: usize) -> String {
    match c {
        Column::Int(v) => v[i].to_string(),
        Column::Float(v) if v[i].is_nan() => String::new(),
        Column::Float(v) => v[i].to_string(),
        Column::Text(v) => csv_field(&v[i]),
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn json_cell(c: &Column, i: usize) -> String {
    match c {
        Column::Int(v) => v[i].to_string(),
        // NaN and infinities have no JSON form: null.
        Column::Float(v) => serde_json::Number::from_f64(v[i]).map(|n| n.to_string()).unwrap_or_else(|| "null".into()),
        Column::Text(v) => json_string(&v[i]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_values_are_empty_in_csv_and_null_in_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let t = vec![
            ("run".to_string(), Column::Text(vec!["a,b".into(), "c".into()])),
            ("step".to_string(), Column::Int(vec![1, 2])),
            ("loss".to_string(), Column::Float(vec![0.5, f64::NAN])),
        ];
        let csv = dir.path().join("t.csv");
        write(&t, Format::Csv, &csv, "x").unwrap();
        assert_eq!(std::fs::read_to_string(&csv).unwrap(), "run,step,loss\n\"a,b\",1,0.5\nc,2,\n");
        let jl = dir.path().join("t.jsonl");
        write(&t, Format::Jsonl, &jl, "x").unwrap();
        assert_eq!(
            std::fs::read_to_string(&jl).unwrap(),
            "{\"run\":\"a,b\",\"step\":1,\"loss\":0.5}\n{\"run\":\"c\",\"step\":2,\"loss\":null}\n"
        );
        assert!("parquet".parse::<Format>().is_err());
    }
}
