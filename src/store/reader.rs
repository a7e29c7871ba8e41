//! [`RunLog`]: reads a run log. Each call opens the file read-only, reads and closes it again,
//! so a `RunLog` can be kept around while a [`RunLogWriter`](super::RunLogWriter) appends, and
//! always sees the rows of the writer's last burst.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hdf5::{File, Group};

use super::h5::{self, obj_err};
use super::sandbox::{self, Kind};
use super::snapshot::{keep, table, Snapshot};
use super::{EvalSeries, HistSeries, RunMeta, SampleGrid, Series, EVAL_COLS, HIST_COLS, SCALAR_COLS, SCHEMA_VERSION};
use crate::error::{Error, Result};

/// A run log on disk (`run.h5`).
#[derive(Clone, Debug)]
pub struct RunLog {
    path: PathBuf,
    /// What the HDF5 checker read at `open`, where checks are on; else each call reads the file.
    snap: Option<Arc<Snapshot>>,
}

impl RunLog {
    /// Checks that `path` is a run log this code can read (schema version) and returns a handle.
    /// Each call on it reads the file again and sees the writer's last burst; except where the
    /// HDF5 checker is on (see [`sandbox`](super::sandbox)): then the checker reads the whole log
    /// here, and the handle answers from that (open a new one for newer rows).
    pub fn open(path: impl AsRef<Path>) -> Result<RunLog> {
        let log = RunLog { path: path.as_ref().to_path_buf(), snap: None };
        if let Some(bytes) = sandbox::read(Kind::RunLog, &log.path)? {
            return Self::from_snapshot(log.path, &bytes);
        }
        let file = log.file()?;
        let version: i64 = h5::get_int_attr(&log.path, &file, "schema_version")?;
        if version < 1 || version > SCHEMA_VERSION {
            return Err(obj_err(
                &log.path,
                "/@schema_version",
                format!("{version} is not supported (this ayt reads 1..={SCHEMA_VERSION})"),
            ));
        }
        Ok(log)
    }

    /// A handle answering from the checker's answer `bytes` (see [`RunLog::snapshot`]).
    pub(super) fn from_snapshot(path: PathBuf, bytes: &[u8]) -> Result<RunLog> {
        let snap = Snapshot::decode(bytes).map_err(|e| Error::file(&path, e.to_string()))?;
        Ok(RunLog { path, snap: Some(Arc::new(snap)) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&self) -> Result<File> {
        if !self.path.exists() {
            return Err(Error::file(&self.path, "run log not found"));
        }
        File::open(&self.path).map_err(|e| Error::file(&self.path, format!("cannot open as HDF5: {e}")))
    }

    /// The root attributes.
    pub fn meta(&self) -> Result<RunMeta> {
        if let Some(s) = &self.snap {
            return s.meta();
        }
        let f = self.file()?;
        let p = &self.path;
        Ok(RunMeta {
            schema_version: h5::get_int_attr(p, &f, "schema_version")?,
            ayt_version: h5::get_str_attr(p, &f, "ayt_version")?,
            preset_toml: h5::get_str_attr(p, &f, "preset_toml")?,
            seed: h5::get_int_attr(p, &f, "seed")?,
            created_utc: h5::get_str_attr(p, &f, "created_utc")?,
            dataset: h5::get_str_attr(p, &f, "dataset")?,
            dataset_sha256: h5::get_str_attr(p, &f, "dataset_sha256")?,
        })
    }

    fn names(&self, top: &str) -> Result<Vec<String>> {
        if let Some(s) = &self.snap {
            return s.names(top);
        }
        let f = self.file()?;
        match h5::opt_group(&self.path, &f, top)? {
            Some(g) => h5::tables(&self.path, &g),
            None => Ok(Vec::new()),
        }
    }

    /// Opens table `/<top>/<name>`, or errors naming it.
    fn table(&self, f: &File, top: &str, kind: &str, name: &str, cols: &[&str]) -> Result<Group> {
        h5::check_name(kind, name, cols).map_err(|e| Error::file(&self.path, e.to_string()))?;
        let obj = format!("/{top}/{name}");
        h5::opt_group(&self.path, f, &obj)?.ok_or_else(|| obj_err(&self.path, &obj, format!("no such {kind}")))
    }

    /// Names of the scalars (e.g. `loss`, `tangent/mfd/rho`), sorted.
    pub fn scalar_names(&self) -> Result<Vec<String>> {
        self.names("scalars")
    }

    /// All rows of scalar `name`.
    pub fn scalar(&self, name: &str) -> Result<Series> {
        if let Some(s) = &self.snap {
            return s.scalar(&self.path, name);
        }
        let f = self.file()?;
        let g = self.table(&f, "scalars", "scalar", name, &SCALAR_COLS)?;
        let s = Series {
            step: h5::read_vec(&self.path, &g, "step")?,
            kimg: h5::read_vec(&self.path, &g, "kimg")?,
            wall: h5::read_vec(&self.path, &g, "wall")?,
            value: h5::read_vec(&self.path, &g, "value")?,
        };
        self.same_len(&g, &[("step", s.step.len()), ("kimg", s.kimg.len()), ("wall", s.wall.len()), ("value", s.value.len())])?;
        Ok(s)
    }

    fn same_len(&self, g: &Group, lens: &[(&str, usize)]) -> Result<()> {
        if let Some(&(c0, n0)) = lens.first() {
            if let Some(&(c, n)) = lens.iter().find(|(_, n)| *n != n0) {
                return Err(obj_err(&self.path, &g.name(), format!("columns have different lengths ({c0}: {n0}, {c}: {n})")));
            }
        }
        Ok(())
    }

    /// Names of the histograms, sorted.
    pub fn hist_names(&self) -> Result<Vec<String>> {
        self.names("hist")
    }

    /// All rows of histogram `name`.
    pub fn hist(&self, name: &str) -> Result<HistSeries> {
        if let Some(s) = &self.snap {
            return s.hist(&self.path, name);
        }
        let f = self.file()?;
        let p = &self.path;
        let g = self.table(&f, "hist", "histogram", name, &HIST_COLS)?;
        let step: Vec<i64> = h5::read_vec(p, &g, "step")?;
        let (eds, eshape) = h5::dataset_nd(p, &g, "edges", 2)?;
        let (cds, cshape) = h5::dataset_nd(p, &g, "counts", 2)?;
        self.same_len(&g, &[("step", step.len()), ("edges", eshape[0]), ("counts", cshape[0])])?;
        let bins = cshape[1];
        if eshape[1] != bins + 1 {
            return Err(obj_err(p, &eds.name(), format!("has {} edges per row, counts have {bins} bins", eshape[1])));
        }
        let edges: Vec<f64> = h5::read_all(p, &eds)?;
        let counts: Vec<i64> = h5::read_all(p, &cds)?;
        Ok(HistSeries {
            step,
            bins,
            edges: edges.chunks(bins + 1).map(<[f64]>::to_vec).collect(),
            counts: if bins == 0 { vec![Vec::new(); cshape[0]] } else { counts.chunks(bins).map(<[i64]>::to_vec).collect() },
        })
    }

    /// `/samples`, or `None` if no sample grid was logged; with the grid shape.
    fn samples_group(&self, f: &File) -> Result<Option<(Group, Vec<usize>)>> {
        let p = &self.path;
        let Some(g) = h5::opt_group(p, f, "/samples")? else {
            return Ok(None);
        };
        if !g.link_exists("step") && !g.link_exists("images") {
            return Ok(None);
        }
        let (_, sshape) = h5::dataset_nd(p, &g, "step", 1)?;
        let (_, ishape) = h5::dataset_nd(p, &g, "images", 5)?;
        self.same_len(&g, &[("step", sshape[0]), ("images", ishape[0])])?;
        Ok(Some((g, ishape)))
    }

    /// Every logged sample grid with its step (empty if none).
    pub fn samples(&self) -> Result<Vec<(i64, SampleGrid)>> {
        if let Some(s) = &self.snap {
            return s.samples();
        }
        let f = self.file()?;
        let p = &self.path;
        let Some((g, shape)) = self.samples_group(&f)? else {
            return Ok(Vec::new());
        };
        let step: Vec<i64> = h5::read_vec(p, &g, "step")?;
        let ds = g.dataset("images").map_err(|e| obj_err(p, "/samples/images", e))?;
        let images: Vec<u8> = h5::read_all(p, &ds)?;
        let (n, h, w, c) = (shape[1], shape[2], shape[3], shape[4]);
        let per = n * h * w * c;
        Ok(step
            .into_iter()
            .enumerate()
            .map(|(i, s)| (s, SampleGrid { n, h, w, c, images: images[i * per..(i + 1) * per].to_vec() }))
            .collect())
    }

    /// The last logged sample grid with its step (reads only that row), or `None`.
    pub fn last_samples(&self) -> Result<Option<(i64, SampleGrid)>> {
        if let Some(s) = &self.snap {
            return s.last_samples();
        }
        let f = self.file()?;
        let p = &self.path;
        let Some((g, shape)) = self.samples_group(&f)? else {
            return Ok(None);
        };
        let rows = shape[0];
        if rows == 0 {
            return Ok(None);
        }
        let (sds, _) = h5::dataset_nd(p, &g, "step", 1)?;
        let step = sds.read_slice_1d::<i64, _>(rows - 1..rows).map_err(|e| obj_err(p, "/samples/step", e))?;
        let (ids, _) = h5::dataset_nd(p, &g, "images", 5)?;
        let img = ids
            .read_slice::<u8, _, ndarray::Ix5>(ndarray::s![rows - 1..rows, .., .., .., ..])
            .map_err(|e| obj_err(p, "/samples/images", e))?;
        let s = step.first().copied().ok_or_else(|| obj_err(p, "/samples/step", "empty read"))?;
        let (n, h, w, c) = (shape[1], shape[2], shape[3], shape[4]);
        Ok(Some((s, SampleGrid { n, h, w, c, images: img.iter().copied().collect() })))
    }

    /// Reads every table, each with what reading it gave, encoded: the HDF5 checker's answer.
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        let snap = Snapshot {
            meta: keep(self.meta()),
            scalars: table(self.scalar_names(), |n| self.scalar(n)),
            hists: table(self.hist_names(), |n| self.hist(n)),
            evals: table(self.eval_names(), |n| self.eval(n)),
            samples: keep(self.samples()),
        };
        Ok(snap.encode())
    }

    /// Names of the evaluation metrics, sorted.
    pub fn eval_names(&self) -> Result<Vec<String>> {
        self.names("eval")
    }

    /// All rows of evaluation metric `name`, with its string attributes.
    pub fn eval(&self, name: &str) -> Result<EvalSeries> {
        if let Some(s) = &self.snap {
            return s.eval(&self.path, name);
        }
        let f = self.file()?;
        let p = &self.path;
        let g = self.table(&f, "eval", "eval metric", name, &EVAL_COLS)?;
        let mut attrs = Vec::new();
        let names = h5::attr_names(p, &g)?;
        for a in names {
            // Written as strings; accept numbers too (e.g. `n_samples` set from h5py).
            let v = h5::get_str_attr(p, &g, &a)
                .or_else(|e| h5::get_int_attr::<i64>(p, &g, &a).map(|v| v.to_string()).map_err(|_| e))
                .or_else(|e| h5::get_int_attr::<f64>(p, &g, &a).map(|v| v.to_string()).map_err(|_| e))?;
            attrs.push((a, v));
        }
        let s = EvalSeries {
            step: h5::read_vec(p, &g, "step")?,
            kimg: h5::read_vec(p, &g, "kimg")?,
            value: h5::read_vec(p, &g, "value")?,
            attrs,
        };
        self.same_len(&g, &[("step", s.step.len()), ("kimg", s.kimg.len()), ("value", s.value.len())])?;
        Ok(s)
    }
}
