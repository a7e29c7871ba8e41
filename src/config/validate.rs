//! The range checks every preset section uses; each error names the key and the value
//! (`key = value: what is wrong`). NaN and infinities never get this far:
//! `overrides::check_finite` refuses them for every field of every preset kind before any is read.

pub type Check = std::result::Result<(), String>;

pub fn positive(key: &str, v: f64) -> Check {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!("{key} = {v}: must be a positive number"))
    }
}

pub fn non_negative(key: &str, v: f64) -> Check {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(format!("{key} = {v}: must be >= 0"))
    }
}

pub fn at_least(key: &str, v: u64, min: u64) -> Check {
    if v >= min {
        Ok(())
    } else {
        Err(format!("{key} = {v}: must be at least {min}"))
    }
}

pub fn between(key: &str, v: u64, min: u64, max: u64) -> Check {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(format!("{key} = {v}: must be between {min} and {max}"))
    }
}

pub fn in_unit_interval(key: &str, v: f64) -> Check {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(format!("{key} = {v}: must be in [0, 1)"))
    }
}
