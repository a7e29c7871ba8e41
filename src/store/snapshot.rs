//! A run log read whole, as the HDF5 checker sends it back (`sandbox.rs`): each table with what
//! reading it gave, its rows or its error, so that one damaged table fails only its own reads.

use std::path::Path;

use super::h5::{check_name, obj_err};
use super::wire::{Dec, Enc};
use super::{EvalSeries, HistSeries, RunMeta, SampleGrid, Series, EVAL_COLS, HIST_COLS, SCALAR_COLS};
use crate::error::{Error, Result};

pub(super) type Read<T> = std::result::Result<T, String>;
/// A kind of table: each table's name with what reading it gave.
pub(super) type Tables<T> = Read<Vec<(String, Read<T>)>>;

#[derive(Debug)]
pub(super) struct Snapshot {
    pub meta: Read<RunMeta>,
    pub scalars: Tables<Series>,
    pub hists: Tables<HistSeries>,
    pub evals: Tables<EvalSeries>,
    pub samples: Read<Vec<(i64, SampleGrid)>>,
}

/// What a read gave, kept: its value or its error's text.
pub(super) fn keep<T>(r: Result<T>) -> Read<T> {
    r.map_err(|e| e.to_string())
}

/// Each table of `names` with what `read` gave for it.
pub(super) fn table<T>(names: Result<Vec<String>>, read: impl Fn(&str) -> Result<T>) -> Tables<T> {
    keep(names).map(|names| names.into_iter().map(|n| (n.clone(), keep(read(&n)))).collect())
}

impl Snapshot {
    pub(super) fn meta(&self) -> Result<RunMeta> {
        self.meta.clone().map_err(Error::msg)
    }

    pub(super) fn names(&self, top: &str) -> Result<Vec<String>> {
        match top {
            "scalars" => names(&self.scalars),
            "hist" => names(&self.hists),
            _ => names(&self.evals),
        }
    }

    pub(super) fn scalar(&self, path: &Path, name: &str) -> Result<Series> {
        find(path, &self.scalars, ("scalars", "scalar", &SCALAR_COLS), name)
    }

    pub(super) fn hist(&self, path: &Path, name: &str) -> Result<HistSeries> {
        find(path, &self.hists, ("hist", "histogram", &HIST_COLS), name)
    }

    pub(super) fn eval(&self, path: &Path, name: &str) -> Result<EvalSeries> {
        find(path, &self.evals, ("eval", "eval metric", &EVAL_COLS), name)
    }

    pub(super) fn samples(&self) -> Result<Vec<(i64, SampleGrid)>> {
        self.samples.clone().map_err(Error::msg)
    }

    pub(super) fn last_samples(&self) -> Result<Option<(i64, SampleGrid)>> {
        self.samples.as_ref().map(|v| v.last().cloned()).map_err(|e| Error::msg(e.clone()))
    }
}

fn names<T>(tables: &Tables<T>) -> Result<Vec<String>> {
    tables.as_ref().map(|v| v.iter().map(|(n, _)| n.clone()).collect()).map_err(|e| Error::msg(e.clone()))
}

/// Table `name` of `tables`, with the errors the file reader gives: a bad name, a missing table.
fn find<T: Clone>(path: &Path, tables: &Tables<T>, (top, kind, cols): (&str, &str, &[&str]), name: &str) -> Result<T> {
    check_name(kind, name, cols).map_err(|e| Error::file(path, e.to_string()))?;
    let tables = tables.as_ref().map_err(|e| Error::msg(e.clone()))?;
    match tables.iter().find(|(n, _)| n == name) {
        Some((_, t)) => t.clone().map_err(Error::msg),
        None => Err(obj_err(path, &format!("/{top}/{name}"), format!("no such {kind}"))),
    }
}

// The wire form: each `Read` a tag (0 rows, 1 error) and then the rows or the message.

fn put<T>(e: &mut Enc, r: &Read<T>, rows: impl Fn(&mut Enc, &T)) {
    match r {
        Ok(v) => rows(e.u64(0), v),
        Err(why) => {
            e.u64(1).str(why);
        }
    }
}

fn get<T>(d: &mut Dec, rows: impl Fn(&mut Dec) -> Result<T>) -> Result<Read<T>> {
    Ok(if d.u64()? == 0 { Ok(rows(d)?) } else { Err(d.str()?) })
}

fn put_table<T>(e: &mut Enc, t: &Tables<T>, rows: impl Fn(&mut Enc, &T) + Copy) {
    put(e, t, |e, v| {
        e.u64(v.len() as u64);
        v.iter().for_each(|(n, r)| put(e.str(n), r, rows));
    });
}

fn get_table<T>(d: &mut Dec, rows: impl Fn(&mut Dec) -> Result<T> + Copy) -> Result<Tables<T>> {
    get(d, |d| (0..d.u64()?).map(|_| Ok((d.str()?, get(d, rows)?))).collect())
}

impl Snapshot {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        put(&mut e, &self.meta, |e, m| {
            e.u64(m.schema_version as u64).str(&m.ayt_version).str(&m.preset_toml).u64(m.seed).str(&m.created_utc);
            e.str(&m.dataset).str(&m.dataset_sha256);
        });
        put_table(&mut e, &self.scalars, |e, s| {
            e.i64s(&s.step).f64s(&s.kimg).f64s(&s.wall).f64s(&s.value);
        });
        put_table(&mut e, &self.hists, |e, h| {
            e.i64s(&h.step).u64(h.bins as u64).f64s(&h.edges.concat()).i64s(&h.counts.concat());
        });
        put_table(&mut e, &self.evals, |e, s| {
            e.i64s(&s.step).f64s(&s.kimg).f64s(&s.value).u64(s.attrs.len() as u64);
            s.attrs.iter().for_each(|(k, v)| {
                e.str(k).str(v);
            });
        });
        put(&mut e, &self.samples, |e, v| {
            e.u64(v.len() as u64);
            v.iter().for_each(|(step, g)| {
                e.u64(*step as u64).usizes(&[g.n, g.h, g.w, g.c]).bytes(&g.images);
            });
        });
        e.finish()
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Snapshot> {
        let d = &mut Dec::new(bytes);
        let meta = get(d, |d| {
            Ok(RunMeta {
                schema_version: d.u64()? as i64,
                ayt_version: d.str()?,
                preset_toml: d.str()?,
                seed: d.u64()?,
                created_utc: d.str()?,
                dataset: d.str()?,
                dataset_sha256: d.str()?,
            })
        })?;
        let scalars = get_table(d, |d| Ok(Series { step: d.i64s()?, kimg: d.f64s()?, wall: d.f64s()?, value: d.f64s()? }))?;
        let hists = get_table(d, |d| {
            let (step, bins, edges, counts) = (d.i64s()?, d.usize()?, d.f64s()?, d.i64s()?);
            let rows = step.len();
            if bins == usize::MAX {
                return Err(Error::msg("the HDF5 checker's answer has a histogram of usize::MAX bins"));
            }
            Ok(HistSeries {
                step,
                bins,
                edges: edges.chunks(bins + 1).map(<[f64]>::to_vec).collect(),
                counts: if bins == 0 { vec![Vec::new(); rows] } else { counts.chunks(bins).map(<[i64]>::to_vec).collect() },
            })
        })?;
        let evals = get_table(d, |d| {
            let (step, kimg, value) = (d.i64s()?, d.f64s()?, d.f64s()?);
            let attrs = (0..d.u64()?).map(|_| Ok((d.str()?, d.str()?))).collect::<Result<_>>()?;
            Ok(EvalSeries { step, kimg, value, attrs })
        })?;
        let samples = get(d, |d| {
            (0..d.u64()?)
                .map(|_| {
                    let step = d.u64()? as i64;
                    let [n, h, w, c] = <[usize; 4]>::try_from(d.usizes()?).map_err(|_| Error::msg("a sample grid without its shape"))?;
                    Ok((step, SampleGrid { n, h, w, c, images: d.bytes()?.to_vec() }))
                })
                .collect()
        })?;
        Ok(Snapshot { meta, scalars, hists, evals, samples })
    }
}
