//! EMA profiles (`train.ema`): several exponential moving averages of the weights kept at once,
//! each checkpointed, sampled and evaluated by name. A profile gives a per-step `decay`, or EDM's
//! `half_life_kimg` (the decay per step is `0.5 ^ (batch_size / (half_life_kimg * 1000))`),
//! optionally with EDM's `rampup_ratio` (the half-life capped at `rampup_ratio` times the images
//! seen so far). Without `train.ema`, `train.ema_decay` is one profile named `ema`.

use serde::{Deserialize, Serialize};

use super::validate::Check;

/// The name of the one profile `train.ema_decay` stands for when `train.ema` is not given.
pub const DEFAULT_NAME: &str = "ema";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmaProfile {
    /// `[a-z0-9_-]+`, unique in the preset; the first profile is the run's default.
    pub name: String,
    /// Weight of the old average per step, in `(0, 1)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decay: Option<f64>,
    /// EDM's half-life in thousands of images (instead of `decay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half_life_kimg: Option<f64>,
    /// EDM's ramp-up: the half-life is at most `rampup_ratio` times the images seen so far
    /// (only with `half_life_kimg`; EDM uses 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rampup_ratio: Option<f64>,
}

impl EmaProfile {
    /// A profile of constant per-step `decay`.
    pub fn with_decay(name: &str, decay: f64) -> Self {
        EmaProfile { name: name.to_string(), decay: Some(decay), half_life_kimg: None, rampup_ratio: None }
    }

    /// The decay of the step that starts after `images_seen` images, at `batch` images a step
    /// (EDM's `ema_beta`, taken before the step's images are counted).
    pub fn decay_at(&self, batch: usize, images_seen: u64) -> f64 {
        if let Some(d) = self.decay {
            return d;
        }
        let mut half_life_img = self.half_life_kimg.unwrap_or(0.0) * 1000.0;
        if let Some(r) = self.rampup_ratio {
            half_life_img = half_life_img.min(images_seen as f64 * r);
        }
        0.5f64.powf(batch as f64 / half_life_img.max(1e-8))
    }

    /// `EMA "slow" (half-life 500 kimg, ramp-up 0.05)`: what the `weights` attribute of an
    /// evaluation says.
    pub fn describe(&self) -> String {
        let how = match (self.decay, self.half_life_kimg, self.rampup_ratio) {
            (Some(d), _, _) => format!("decay {d} per step"),
            (None, Some(h), Some(r)) => format!("half-life {h} kimg, ramp-up ratio {r}"),
            (None, Some(h), None) => format!("half-life {h} kimg"),
            (None, None, _) => "no decay".to_string(),
        };
        format!("EMA {:?} ({how})", self.name)
    }

    fn validate(&self, i: usize) -> Check {
        let key = format!("train.ema[{i}]");
        let name_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
        if self.name.is_empty() || !self.name.chars().all(name_ok) {
            return Err(format!("{key}.name = {:?}: must be non-empty and only a-z, 0-9, '_' and '-'", self.name));
        }
        match (self.decay, self.half_life_kimg) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(format!("{key} (name {:?}): give exactly one of decay and half_life_kimg", self.name));
            }
            (Some(d), None) if !(d > 0.0 && d < 1.0) => return Err(format!("{key}.decay = {d}: must be in (0, 1)")),
            (None, Some(h)) if !(h.is_finite() && h > 0.0) => {
                return Err(format!("{key}.half_life_kimg = {h}: must be a positive number"));
            }
            _ => {}
        }
        match self.rampup_ratio {
            Some(r) if self.decay.is_some() => {
                Err(format!("{key}.rampup_ratio = {r}: only with half_life_kimg (the ramp-up caps the half-life), not with decay"))
            }
            Some(r) if !(r.is_finite() && r > 0.0) => Err(format!("{key}.rampup_ratio = {r}: must be a positive number")),
            _ => Ok(()),
        }
    }
}

/// Checks `train.ema` (each profile, names unique) and its interaction with `train.ema_decay`:
/// with profiles given, `ema_decay` must be left at its default `default_decay`.
pub fn validate(profiles: &[EmaProfile], ema_decay: f64, default_decay: f64) -> Check {
    if !profiles.is_empty() && ema_decay != default_decay {
        return Err(format!(
            "train.ema_decay = {ema_decay}: train.ema is given, so set each profile's decay there and leave ema_decay at its default \
             {default_decay} (without train.ema, ema_decay is one profile named \"{DEFAULT_NAME}\")"
        ));
    }
    for (i, p) in profiles.iter().enumerate() {
        p.validate(i)?;
        if let Some(j) = profiles[..i].iter().position(|q| q.name == p.name) {
            return Err(format!("train.ema[{i}].name = {:?}: already the name of train.ema[{j}]", p.name));
        }
    }
    Ok(())
}

/// The profiles a run keeps: `profiles`, or (none given) one named `ema` of decay `ema_decay`.
pub fn resolve(profiles: &[EmaProfile], ema_decay: f64) -> Vec<EmaProfile> {
    if profiles.is_empty() {
        vec![EmaProfile::with_decay(DEFAULT_NAME, ema_decay)]
    } else {
        profiles.to_vec()
    }
}

/// The profile called `name` (`None`: the default, the first) with its index; an unknown name
/// is an error listing the profiles.
pub fn find(profiles: &[EmaProfile], name: Option<&str>) -> std::result::Result<(usize, EmaProfile), String> {
    let i = match name {
        None => 0,
        Some(n) => profiles.iter().position(|p| p.name == n).ok_or_else(|| {
            let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
            format!("no EMA profile {n:?}; this run's profiles are: {} (the first is the default)", names.join(", "))
        })?,
    };
    profiles.get(i).map(|p| (i, p.clone())).ok_or_else(|| "no EMA profile".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preset;
    use std::path::Path;

    use crate::config::preset::tests::MINIMAL;

    fn parse(extra: &str, overrides: &[&str]) -> crate::Result<Preset> {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        Preset::parse(&format!("{MINIMAL}{extra}"), Path::new("presets/x.toml"), &o)
    }

    fn err(extra: &str, overrides: &[&str]) -> String {
        parse(extra, overrides).unwrap_err().to_string()
    }

    #[test]
    fn without_train_ema_ema_decay_is_one_profile_named_ema() {
        let p = parse("", &[]).unwrap();
        assert!(p.train.ema.is_empty());
        assert_eq!(p.train.ema_profiles(), vec![EmaProfile::with_decay("ema", 0.9999)]);
        let p = parse("", &["train.ema_decay=0.99"]).unwrap();
        assert_eq!(p.train.ema_profiles(), vec![EmaProfile::with_decay("ema", 0.99)]);
        assert!(!p.to_toml().contains("[[train.ema]]"), "an old preset serialises as before");
    }

    #[test]
    fn profiles_parse_in_order_and_round_trip() {
        let text = r#"
[[train.ema]]
name = "fast"
decay = 0.999
[[train.ema]]
name = "edm-2"
half_life_kimg = 500
rampup_ratio = 0.05
"#;
        let p = parse(text, &[]).unwrap();
        let names: Vec<String> = p.train.ema_profiles().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["fast", "edm-2"]);
        assert_eq!(p.train.ema[1].half_life_kimg, Some(500.0));
        assert_eq!(Preset::parse(&p.to_toml(), Path::new("x.toml"), &[]).unwrap(), p);
        let inline = parse("", &[r#"train.ema=[{name="a", decay=0.5}, {name="b_1", half_life_kimg=0.1}]"#]).unwrap();
        assert_eq!(inline.train.ema.len(), 2);
        assert_eq!(find(&p.train.ema_profiles(), None).unwrap().1.name, "fast");
        assert_eq!(find(&p.train.ema_profiles(), Some("edm-2")).unwrap().0, 1);
        let e = find(&p.train.ema_profiles(), Some("slow")).unwrap_err();
        assert!(e.contains("\"slow\"") && e.contains("fast, edm-2"), "{e}");
        assert_eq!(p.train.ema[0].describe(), "EMA \"fast\" (decay 0.999 per step)");
        assert_eq!(p.train.ema[1].describe(), "EMA \"edm-2\" (half-life 500 kimg, ramp-up ratio 0.05)");
    }

    #[test]
    fn bad_profiles_are_refused_naming_field_and_value() {
        let one = |body: &str| format!("[[train.ema]]\n{body}\n");
        let cases: &[(String, &[&str], &str)] = &[
            (one("name = \"Slow\"\ndecay = 0.9"), &[], "train.ema[0].name = \"Slow\": must be non-empty and only a-z, 0-9"),
            (one("name = \"\"\ndecay = 0.9"), &[], "train.ema[0].name = \"\""),
            (one("name = \"a.b\"\ndecay = 0.9"), &[], "train.ema[0].name = \"a.b\""),
            (one("name = \"a\"\ndecay = 1.0"), &[], "train.ema[0].decay = 1: must be in (0, 1)"),
            (one("name = \"a\"\ndecay = 0.0"), &[], "train.ema[0].decay = 0: must be in (0, 1)"),
            (one("name = \"a\"\nhalf_life_kimg = -2.0"), &[], "train.ema[0].half_life_kimg = -2: must be a positive number"),
            (one("name = \"a\""), &[], "train.ema[0] (name \"a\"): give exactly one of decay and half_life_kimg"),
            (one("name = \"a\"\ndecay = 0.5\nhalf_life_kimg = 1.0"), &[], "train.ema[0] (name \"a\"): give exactly one"),
            (one("name = \"a\"\ndecay = 0.5\nrampup_ratio = 0.05"), &[], "train.ema[0].rampup_ratio = 0.05: only with half_life_kimg"),
            (one("name = \"a\"\nhalf_life_kimg = 1.0\nrampup_ratio = 0.0"), &[], "train.ema[0].rampup_ratio = 0: must be a positive"),
            (
                format!("{}{}", one("name = \"a\"\ndecay = 0.5"), one("name = \"a\"\ndecay = 0.9")),
                &[],
                "train.ema[1].name = \"a\": already",
            ),
            (one("name = \"a\"\ndecay = 0.5"), &["train.ema_decay=0.99"], "train.ema_decay = 0.99: train.ema is given"),
            (one("name = \"a\"\ndecay = 0.5\nhalflife = 3"), &[], "halflife"),
            (one("name = \"a\"\ndecay = nan"), &[], "train.ema[0].decay = NaN: must be a finite number"),
        ];
        for (text, sets, want) in cases {
            let e = err(text, sets);
            assert!(e.contains("presets/x.toml") && e.contains(want), "{text} {sets:?}\nwanted: {want}\ngot: {e}");
        }
        // ema_decay left at its default beside train.ema is fine; an empty list is no list.
        parse(&one("name = \"a\"\ndecay = 0.5"), &["train.ema_decay=0.9999"]).unwrap();
        assert_eq!(parse("", &["train.ema=[]"]).unwrap().train.ema_profiles()[0].name, "ema");
    }

    #[test]
    fn half_life_decay_is_edms() {
        let p = EmaProfile { name: "h".into(), decay: None, half_life_kimg: Some(0.5), rampup_ratio: None };
        // batch 500 at a 500-image half-life: the average halves per step
        assert_eq!(p.decay_at(500, 0), 0.5);
        assert_eq!(p.decay_at(500, 1_000_000), 0.5);
        assert!((p.decay_at(8, 0) - 0.5f64.powf(8.0 / 500.0)).abs() < 1e-15);
        let r = EmaProfile { rampup_ratio: Some(0.05), ..p };
        assert_eq!(r.decay_at(8, 0), 0.0, "the first step copies the weights, as EDM's");
        // after 2000 images the half-life is min(500, 0.05 * 2000) = 100 images
        assert!((r.decay_at(8, 2000) - 0.5f64.powf(8.0 / 100.0)).abs() < 1e-15);
        assert_eq!(r.decay_at(8, 1_000_000), 0.5f64.powf(8.0 / 500.0));
        assert_eq!(EmaProfile::with_decay("d", 0.9).decay_at(8, 123), 0.9);
    }
}
