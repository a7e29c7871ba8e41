//! `--set key.path=value` overrides applied to a preset's TOML table before it is validated.

use toml::{Table, Value};

/// Parses `value` as a TOML value (`3`, `1e-4`, `true`, `[8, 16]`, `"x"`), else takes it as a string.
fn parse_value(value: &str) -> Value {
    match toml::from_str::<Table>(&format!("v = {value}")) {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| Value::String(value.to_string())),
        Err(_) => Value::String(value.to_string()),
    }
}

/// Applies one `a.b.c=value` assignment, creating tables on the way.
pub fn apply(table: &mut Table, assignment: &str) -> Result<(), String> {
    let (key, value) = assignment.split_once('=').ok_or_else(|| format!("--set {assignment}: expected key=value"))?;
    let key = key.trim();
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("--set {assignment}: bad key `{key}`"));
    }
    let mut cur = table;
    for part in &parts[..parts.len() - 1] {
        let entry = cur.entry(part.to_string()).or_insert_with(|| Value::Table(Table::new()));
        cur = entry.as_table_mut().ok_or_else(|| format!("--set {assignment}: `{part}` is not a table"))?;
    }
    cur.insert(parts[parts.len() - 1].to_string(), parse_value(value.trim()));
    Ok(())
}

/// No field of any preset kind takes a NaN or an infinity: the first one in `table` is an error
/// `key = value` (`a.b[2]` inside lists). Checked before any field is read, so a field added
/// later is covered too.
pub fn check_finite(table: &Table) -> Result<(), String> {
    fn walk(v: &Value, key: &str) -> Result<(), String> {
        match v {
            Value::Float(f) if !f.is_finite() => Err(format!("{key} = {f}: must be a finite number")),
            Value::Table(t) => t.iter().try_for_each(|(k, v)| walk(v, &if key.is_empty() { k.clone() } else { format!("{key}.{k}") })),
            Value::Array(a) => a.iter().enumerate().try_for_each(|(i, v)| walk(v, &format!("{key}[{i}]"))),
            _ => Ok(()),
        }
    }
    table.iter().try_for_each(|(k, v)| walk(v, k))
}

/// Parses preset text into `T`, applying `--set` overrides first; errors name `path`, the key and
/// the value. Non-finite numbers are refused here; range checks are the caller's (`validate`).
pub fn parse_with_overrides<T: serde::de::DeserializeOwned>(text: &str, path: &std::path::Path, overrides: &[String]) -> crate::Result<T> {
    let err = |msg: String| crate::Error::Preset { path: path.to_path_buf(), msg };
    let mut table: Table = toml::from_str(text).map_err(|e| err(e.to_string().trim_end().to_string()))?;
    for o in overrides {
        apply(&mut table, o).map_err(err)?;
    }
    check_finite(&table).map_err(err)?;
    Value::Table(table).try_into().map_err(|e: toml::de::Error| err(e.to_string().trim_end().to_string()))
}

/// Reads a preset file, naming it when it cannot be read.
pub fn read_preset(path: &std::path::Path) -> crate::Result<String> {
    std::fs::read_to_string(path).map_err(|e| crate::Error::Preset { path: path.to_path_buf(), msg: format!("cannot read: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_types_and_nest() {
        let mut t = Table::new();
        apply(&mut t, "train.batch_size=64").unwrap();
        apply(&mut t, "train.lr=1e-4").unwrap();
        apply(&mut t, "name=my-run").unwrap();
        apply(&mut t, "model.channels=[8, 16]").unwrap();
        assert_eq!(t["train"]["batch_size"].as_integer(), Some(64));
        assert_eq!(t["train"]["lr"].as_float(), Some(1e-4));
        assert_eq!(t["name"].as_str(), Some("my-run"));
        assert_eq!(t["model"]["channels"].as_array().map(|a| a.len()), Some(2));
        assert!(apply(&mut t, "novalue").is_err());
        assert!(apply(&mut t, "name.x=1").is_err(), "a string is not a table");
    }
}
