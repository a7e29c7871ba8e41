//! A sweep file: a run preset with a `[sweep]` table whose lists expand, row-major in file order
//! (the last key varies fastest), to a grid of member presets. Each member's values go through
//! the `--set` machinery (`config::overrides`), so a member is exactly `ayt train --preset FILE
//! --set k1=v1 --set k2=v2 ...` plus the fields the sweep derives (name, init, iterations).

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::config::{overrides, Preset};
use crate::{Error, Result};

/// Short names accepted in `[sweep]` for common preset paths.
pub const ALIASES: [(&str, &str); 4] =
    [("batch_size", "train.batch_size"), ("loss", "train.loss"), ("lr", "train.lr"), ("iterations", "train.iterations")];

/// The `[sweep]` key that fixes the training budget in thousands of images (not swept).
pub const KIMG_KEY: &str = "kimg";

/// Fields every member must share: the sweep sets the name, and init / phi are the shared inputs.
const NOT_SWEPT: [(&str, &str); 3] = [
    ("name", "each member's name is set by the sweep"),
    ("train.init", "all members start from the same checkpoint (set it once, outside [sweep])"),
    ("mfd.features", "all members use the same phi (set it once, outside [sweep])"),
];

/// Step intervals rescaled with the batch size under a `kimg` budget, so that every member logs,
/// samples, probes and checkpoints at the same kimg whatever its batch size.
const STEP_INTERVALS: [&str; 4] = ["log.every", "log.sample_every", "log.checkpoint_every", "probe.every"];

/// One swept field: its full preset path and its values, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<Value>,
}

/// A parsed, checked sweep file (the grid is not expanded yet).
#[derive(Clone, Debug)]
pub struct SweepSpec {
    /// The sweep file (messages name it; relative `train.init` paths start from its folder).
    pub path: PathBuf,
    /// The sweep's name: the base preset's `name`.
    pub name: String,
    /// The base preset without `[sweep]`, as TOML text.
    pub base_toml: String,
    pub base: Preset,
    pub axes: Vec<Axis>,
    /// Fixed budget: each member trains `ceil(kimg * 1000 / batch_size)` steps.
    pub kimg: Option<f64>,
}

/// One member of the grid.
#[derive(Clone, Debug)]
pub struct Member {
    pub index: usize,
    /// Folder name, e.g. `003-batch_size=16-loss=lpips` (filesystem-safe).
    pub label: String,
    /// The swept `(key, value)` pairs, in axis order.
    pub values: Vec<(String, Value)>,
    /// Every `--set` applied to the base preset: the swept values, then the derived fields.
    pub overrides: Vec<String>,
    pub preset: Preset,
}

impl SweepSpec {
    pub fn load(path: &Path) -> Result<SweepSpec> {
        SweepSpec::parse(&overrides::read_preset(path)?, path)
    }

    /// Parses and checks a sweep file: the base preset, then every `[sweep]` key.
    pub fn parse(text: &str, path: &Path) -> Result<SweepSpec> {
        let err = |msg: String| Error::Preset { path: path.to_path_buf(), msg };
        let mut table: Table = toml::from_str(text).map_err(|e| err(e.to_string().trim_end().to_string()))?;
        overrides::check_finite(&table).map_err(err)?;
        let sweep = match table.remove("sweep") {
            Some(Value::Table(t)) => t,
            Some(other) => return Err(err(format!("sweep = {other}: expected a [sweep] table"))),
            None => return Err(err("no [sweep] table: list the values to sweep, e.g. [sweep] \"train.batch_size\" = [8, 16]".into())),
        };
        let base_toml = toml::to_string(&table).map_err(|e| err(format!("cannot re-serialise the preset: {e}")))?;
        let base = Preset::parse(&base_toml, path, &[])?;
        let order = key_positions(text);
        let mut entries = Vec::new();
        flatten(&sweep, "", &mut entries);
        // File order; a key not found by position (should not happen) goes last.
        entries.sort_by_key(|(k, _)| order.iter().position(|o| o == k).unwrap_or(usize::MAX));
        let mut kimg = None;
        let mut axes: Vec<Axis> = Vec::new();
        for (written, value) in entries {
            if written == KIMG_KEY {
                kimg = Some(parse_kimg(&value).map_err(err)?);
                continue;
            }
            let key = ALIASES.iter().find(|(a, _)| *a == written).map(|(_, full)| full.to_string()).unwrap_or_else(|| written.clone());
            let field = if key == written { format!("sweep.\"{key}\"") } else { format!("sweep.{written} (= {key})") };
            if let Some(other) = axes.iter().find(|a| a.key == key) {
                return Err(err(format!("{field}: the field {} is already swept (duplicate key)", other.key)));
            }
            if let Some((_, why)) = NOT_SWEPT.iter().find(|(k, _)| *k == key) {
                return Err(err(format!("{field}: cannot be swept: {why}")));
            }
            let values = match value {
                Value::Array(v) if v.is_empty() => return Err(err(format!("{field} = []: empty list (a sweep needs at least one value)"))),
                Value::Array(v) => v,
                other => return Err(err(format!("{field} = {other}: expected a list of values, e.g. [{other}]"))),
            };
            check_known_key(&base_toml, &key, &values[0]).map_err(|m| err(format!("{field}: unknown key; {m}")))?;
            axes.push(Axis { key, values });
        }
        if axes.is_empty() {
            return Err(err("[sweep] has no list to sweep (only `kimg`?): add e.g. \"train.batch_size\" = [8, 16]".into()));
        }
        if kimg.is_some() && axes.iter().any(|a| a.key == "train.iterations") {
            return Err(err("sweep.\"train.iterations\": cannot be swept with sweep.kimg, which sets every member's iterations".into()));
        }
        Ok(SweepSpec { path: path.to_path_buf(), name: base.name.clone(), base_toml, base, axes, kimg })
    }

    /// Number of members (the product of the list lengths).
    pub fn len(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Expands the grid. `init` replaces `train.init` in every member (the concrete checkpoint the
    /// sweep resolved once); `None` keeps the base preset's. Each member is validated as a preset;
    /// the first invalid one is an error naming it and the failing field.
    pub fn expand(&self, init: Option<&Path>) -> Result<Vec<Member>> {
        let n = self.len();
        let width = (n.saturating_sub(1)).to_string().len().max(3);
        let short = short_names(&self.axes);
        (0..n)
            .map(|index| {
                let values = self.values_at(index);
                let mut label = format!("{index:0width$}");
                for ((_, v), s) in values.iter().zip(&short) {
                    label.push_str(&format!("-{s}={}", value_label(v)));
                }
                let mut sets: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
                sets.push(format!("name={}", Value::String(format!("{}-{label}", self.name))));
                if let Some(init) = init {
                    sets.push(format!("train.init={}", Value::String(init.display().to_string())));
                }
                let member_err =
                    |msg: String| Error::Preset { path: self.path.clone(), msg: format!("[sweep] member {index} ({label}): {msg}") };
                let unchecked: Preset =
                    overrides::parse_with_overrides(&self.base_toml, &self.path, &sets).map_err(|e| member_err(inner(e)))?;
                sets.extend(self.derived(&unchecked, &values));
                let preset = Preset::parse(&self.base_toml, &self.path, &sets).map_err(|e| member_err(inner(e)))?;
                Ok(Member { index, label, values, overrides: sets, preset })
            })
            .collect()
    }

    /// The swept values of member `index` (row-major: the last axis varies fastest).
    fn values_at(&self, index: usize) -> Vec<(String, Value)> {
        let mut rest = index;
        let mut out: Vec<(String, Value)> = self
            .axes
            .iter()
            .rev()
            .map(|a| {
                let v = a.values[rest % a.values.len()].clone();
                rest /= a.values.len();
                (a.key.clone(), v)
            })
            .collect();
        out.reverse();
        out
    }

    /// The fields a `kimg` budget derives for a member: its iterations, and the step intervals
    /// and the EMA decays (`train.ema_decay`, or each `decay` of `train.ema`) rescaled from the
    /// base preset's batch size to the member's, so that logs, samples, probes and checkpoints
    /// fall at the same kimg and the EMA averages over the same number of images
    /// (`decay^(batch / base batch)`: EDM's half-life in images).
    fn derived(&self, member: &Preset, values: &[(String, Value)]) -> Vec<String> {
        let Some(kimg) = self.kimg else { return Vec::new() };
        let batch = member.train.batch_size.max(1) as u64;
        let mut sets = vec![format!("train.iterations={}", iterations_for(kimg, batch))];
        let base_batch = self.base.train.batch_size as u64;
        if base_batch != batch {
            let current = [member.log.every, member.log.sample_every, member.log.checkpoint_every, member.probe.every];
            for (key, every) in STEP_INTERVALS.iter().zip(current) {
                if every > 0 && !values.iter().any(|(k, _)| k == key) {
                    // in floating point: a (refused later, but parsed first) huge batch must not overflow
                    let scaled = (every as f64 * base_batch as f64 / batch as f64).round().max(1.0) as u64;
                    sets.push(format!("{key}={scaled}"));
                }
            }
            let ratio = batch as f64 / base_batch as f64;
            if !member.train.ema.is_empty() {
                sets.extend(rescaled_ema_profiles(member, values, ratio));
            } else if !values.iter().any(|(k, _)| k == "train.ema_decay") {
                let decay = member.train.ema_decay.powf(ratio);
                sets.push(format!("train.ema_decay={}", Value::Float(decay)));
            }
        }
        sets
    }
}

/// `train.ema` with each per-step `decay` raised to `ratio` (member batch / base batch), unless
/// swept; `half_life_kimg` profiles are in images already and stay.
fn rescaled_ema_profiles(member: &Preset, values: &[(String, Value)], ratio: f64) -> Option<String> {
    if values.iter().any(|(k, _)| k == "train.ema") || member.train.ema.iter().all(|p| p.decay.is_none()) {
        return None;
    }
    let scaled: Vec<crate::config::EmaProfile> =
        member.train.ema.iter().map(|p| crate::config::EmaProfile { decay: p.decay.map(|d| d.powf(ratio)), ..p.clone() }).collect();
    Value::try_from(&scaled).ok().map(|v| format!("train.ema={v}"))
}

/// `ceil(kimg * 1000 / batch)`, with `kimg * 1000` taken as a whole number of images when it is
/// one up to rounding (8.0 kimg at batch 64 is exactly 125 steps).
pub fn iterations_for(kimg: f64, batch: u64) -> u64 {
    let images = kimg * 1000.0;
    let images = if (images - images.round()).abs() < 1e-6 { images.round() as u64 } else { images.ceil() as u64 };
    images.div_ceil(batch.max(1)).max(1)
}

fn parse_kimg(v: &Value) -> std::result::Result<f64, String> {
    let x = match v {
        Value::Integer(i) => *i as f64,
        Value::Float(f) => *f,
        other => return Err(format!("sweep.kimg = {other}: expected a number of thousands of images, e.g. 8.0")),
    };
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(format!("sweep.kimg = {v}: must be a positive number"))
    }
}

/// The message of a preset error (its path is added again by the caller's wrapper).
fn inner(e: Error) -> String {
    match e {
        Error::Preset { msg, .. } => msg,
        other => other.to_string(),
    }
}

/// Whether `key` names a field of a run preset: the base with `key` set to `sample` must not be
/// refused for an unknown field (type and range errors are the members' to report).
fn check_known_key(base_toml: &str, key: &str, sample: &Value) -> std::result::Result<(), String> {
    let set = [format!("{key}={sample}")];
    match overrides::parse_with_overrides::<Preset>(base_toml, Path::new(""), &set) {
        Err(Error::Preset { msg, .. }) if msg.contains("unknown field") || msg.contains("is not a table") || msg.contains("bad key") => {
            Err(format!("no field {key} in a run preset: {msg}"))
        }
        _ => Ok(()),
    }
}

/// `[sweep]` entries as dotted paths: an unquoted dotted key `train.loss = [...]` is a nested
/// table in TOML, a quoted `"train.loss" = [...]` one key; both mean the same field.
fn flatten(t: &Table, prefix: &str, out: &mut Vec<(String, Value)>) {
    for (k, v) in t {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            Value::Table(sub) => flatten(sub, &path, out),
            other => out.push((path, other.clone())),
        }
    }
}

/// The `[sweep]` keys (dotted paths) in the order they appear in the file. `toml::Table` sorts
/// its keys, so the order comes from the spans of the span-preserving parser.
fn key_positions(text: &str) -> Vec<String> {
    use toml::de::{DeTable, DeValue};
    fn walk(t: &DeTable, prefix: &str, out: &mut Vec<(usize, String)>) {
        for (k, v) in t.iter() {
            let path = if prefix.is_empty() { k.get_ref().to_string() } else { format!("{prefix}.{}", k.get_ref()) };
            match v.get_ref() {
                DeValue::Table(sub) => walk(sub, &path, out),
                _ => out.push((k.span().start, path)),
            }
        }
    }
    let Ok(doc) = DeTable::parse(text) else { return Vec::new() };
    let mut out = Vec::new();
    if let Some(DeValue::Table(sweep)) = doc.get_ref().iter().find(|(k, _)| k.get_ref() == "sweep").map(|(_, v)| v.get_ref()) {
        walk(sweep, "", &mut out);
    }
    out.sort();
    out.into_iter().map(|(_, k)| k).collect()
}

/// The name of each axis in member labels: the last path segment, or the whole path where two
/// axes share a last segment (`edm.p_mean` and `ect.p_mean`).
fn short_names(axes: &[Axis]) -> Vec<String> {
    let last = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    axes.iter()
        .map(|a| {
            let s = last(&a.key);
            if axes.iter().filter(|b| last(&b.key) == s).count() > 1 {
                sanitize(&a.key)
            } else {
                sanitize(&s)
            }
        })
        .collect()
}

/// A value as it appears in a member label: strings bare, arrays joined by `x` (`8x16`).
pub fn value_label(v: &Value) -> String {
    let raw = match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(value_label).collect::<Vec<_>>().join("x"),
        other => other.to_string(),
    };
    sanitize(&raw)
}

/// Keeps `[A-Za-z0-9._+-]`; anything else becomes `_` (labels are folder names).
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "._+-".contains(c) { c } else { '_' }).collect()
}

/// A value as plain text for tables (strings without quotes).
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
