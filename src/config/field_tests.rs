//! Every numeric field of every preset kind refuses NaN, infinities and an out-of-range value,
//! with the file, the key and the value in the message. The fields are found by walking a
//! preset's own serialisation, so a field added later without an entry here fails the test.

use std::collections::BTreeMap;
use std::path::Path;

use toml::{Table, Value};

/// `(key, is_float, is_list)` of every number in `table` (lists of numbers count once).
pub fn numeric_leaves(table: &Table) -> Vec<(String, bool, bool)> {
    fn walk(v: &Value, key: String, out: &mut Vec<(String, bool, bool)>) {
        match v {
            Value::Integer(_) => out.push((key, false, false)),
            Value::Float(_) => out.push((key, true, false)),
            Value::Array(a) => match a.first() {
                Some(Value::Integer(_)) => out.push((key, false, true)),
                Some(Value::Float(_)) => out.push((key, true, true)),
                _ => {}
            },
            Value::Table(t) => t.iter().for_each(|(k, v)| walk(v, format!("{key}.{k}"), out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    table.iter().for_each(|(k, v)| walk(v, k.clone(), &mut out));
    out
}

/// Checks one preset kind: `serialised` is a preset with every optional number present,
/// `expected` maps each numeric key to an out-of-range value, written as Rust prints it (so the
/// message can be checked for it; `None`: every finite value of its type is valid), and
/// `parse(overrides)` parses that preset with `--set` overrides applied.
pub fn check_fields(kind: &str, serialised: &str, expected: &[(&str, Option<&str>)], parse: &dyn Fn(&[String]) -> crate::Result<()>) {
    let table: Table = toml::from_str(serialised).unwrap();
    let found: BTreeMap<String, (bool, bool)> = numeric_leaves(&table).into_iter().map(|(k, f, l)| (k, (f, l))).collect();
    let listed: BTreeMap<&str, Option<&str>> = expected.iter().copied().collect();
    let unlisted: Vec<&String> = found.keys().filter(|k| !listed.contains_key(k.as_str())).collect();
    assert!(unlisted.is_empty(), "{kind} preset fields with no validation entry (add them, with a value they must refuse): {unlisted:?}");
    let stale: Vec<&&str> = listed.keys().filter(|k| !found.contains_key(**k)).collect();
    assert!(stale.is_empty(), "{kind}: listed fields that the preset no longer has: {stale:?}");
    let mut problems = Vec::new();
    for (key, (_, is_list)) in &found {
        let mut bad: Vec<String> = ["nan", "inf", "-inf"].iter().map(|v| if *is_list { format!("[{v}]") } else { v.to_string() }).collect();
        if let Some(Some(out_of_range)) = listed.get(key.as_str()) {
            bad.push(out_of_range.to_string());
        }
        for value in bad {
            match parse(&[format!("{key}={value}")]) {
                Ok(()) => problems.push(format!("{key} = {value} was accepted")),
                Err(e) => {
                    let msg = e.to_string();
                    let shown = value.trim_matches(|c| c == '[' || c == ']');
                    if !(msg.contains("p.toml") && msg.contains(key.as_str()) && msg.to_lowercase().contains(shown)) {
                        problems.push(format!("{key} = {value}: the error does not name the file, key and value: {msg}"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{kind} preset:\n  {}", problems.join("\n  "));
}

/// The path every check parses as, so messages can be checked for it.
pub fn file() -> &'static Path {
    Path::new("presets/p.toml")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preset;

    /// A run preset with every optional number set.
    const FULL: &str = r#"
name = "t"
[data]
dataset = "disks"
[train]
mode = "ect"
batch_size = 4
iterations = 10
readback_every = 4
[mfd]
lambda = 0.5
[model]
attention_levels = [1]
"#;

    #[rustfmt::skip]
    const RUN_FIELDS: &[(&str, Option<&str>)] = &[
        ("seed", Some("-1")),
        ("data.disks.size", Some("0")), ("data.disks.radius_min", Some("-0.5")), ("data.disks.radius_max", Some("0.5")),
        ("data.disks.margin", Some("-1.5")), ("data.disks.tau", Some("-0.5")),
        ("model.channels", Some("[0]")), ("model.blocks_per_level", Some("0")), ("model.emb_dim", Some("0")),
        ("model.noise_freqs", Some("0")), ("model.attention_levels", Some("[5]")), ("model.attention_heads", Some("0")),
        ("model.dropout", Some("1.5")), ("model.groups", Some("0")),
        ("train.batch_size", Some("0")), ("train.iterations", Some("0")), ("train.lr", Some("-0.5")),
        ("train.beta1", Some("1.5")), ("train.beta2", Some("1.5")), ("train.weight_decay", Some("-0.1")),
        ("train.ema_decay", Some("1.5")), ("train.c_mult", Some("-1.5")), ("train.max_rollbacks", Some("-1")),
        ("train.readback_every", Some("0")),
        ("edm.p_mean", None), ("edm.p_std", Some("-0.5")),
        ("ect.p_mean", None), ("ect.p_std", Some("-0.5")), ("ect.q", Some("0.5")), ("ect.n_stages", Some("0")),
        ("ect.k", Some("-1.5")), ("ect.b", Some("-1.5")),
        ("sampling.sigma_data", Some("-0.5")), ("sampling.sigma_min", Some("-0.5")), ("sampling.sigma_max", Some("0.001")),
        ("sampling.t_mid", Some("100.5")),
        ("log.every", Some("0")), ("log.sample_every", Some("-1")), ("log.sample_count", Some("-1")),
        ("log.sample_steps", Some("3")), ("log.checkpoint_every", Some("-1")), ("log.keep_checkpoints", Some("-1")),
        ("mfd.eps", Some("-0.5")), ("mfd.lambda", Some("-1.5")), ("mfd.n_rampup", Some("-1")),
        ("probe.every", Some("-1")), ("probe.n", Some("0")), ("probe.k", Some("2")), ("probe.m", Some("0")),
        ("probe.bins", Some("0")),
        ("lpips.resize", Some("8")),
        ("eval.every_kimg", Some("-1.5")), ("eval.n", Some("1")), ("eval.repeats", Some("0")), ("eval.evalnet_iterations", Some("0")),
    ];

    #[test]
    fn every_numeric_run_preset_field_refuses_nan_infinities_and_out_of_range_values() {
        let full = Preset::parse(FULL, file(), &[]).unwrap().to_toml();
        check_fields("run", &full, RUN_FIELDS, &|sets| Preset::parse(FULL, file(), sets).map(|_| ()));
    }

    /// `[model.ddpmpp]` (written only when it is not EDM's CIFAR-10 sizes), on a DDPM++ preset.
    #[test]
    fn every_ddpmpp_field_refuses_nan_infinities_and_out_of_range_values() {
        let ddpmpp = FULL.replace("[model]\nattention_levels = [1]\n", "[model]\narch = \"ddpmpp\"\n[model.ddpmpp]\nnum_blocks = 2\n");
        let written: Table = toml::from_str(&Preset::parse(&ddpmpp, file(), &[]).unwrap().to_toml()).unwrap();
        let only = toml::to_string(&Table::from_iter([(
            "model".to_string(),
            Value::Table(Table::from_iter([("ddpmpp".to_string(), written["model"]["ddpmpp"].clone())])),
        )]))
        .unwrap();
        #[rustfmt::skip]
        let fields = [
            ("model.ddpmpp.model_channels", Some("0")), ("model.ddpmpp.channel_mult", Some("[0]")),
            ("model.ddpmpp.channel_mult_emb", Some("0")), ("model.ddpmpp.num_blocks", Some("0")),
            ("model.ddpmpp.attn_levels", Some("[5]")),
        ];
        check_fields("ddpmpp", &only, &fields, &|sets| Preset::parse(&ddpmpp, file(), sets).map(|_| ()));
    }

    #[test]
    fn the_trials_of_the_issue_are_refused_naming_the_field() {
        for (set, key) in [("ect.q=nan", "ect.q"), ("ect.k=nan", "ect.k"), ("sampling.sigma_max=inf", "sampling.sigma_max")] {
            let e = Preset::parse(FULL, file(), &[set.to_string()]).unwrap_err().to_string();
            assert!(e.contains("p.toml") && e.contains(key) && e.contains("finite"), "{e}");
        }
    }
}
