//! The HDF5 checker's reads (see `store::sandbox`): each kind of file read the way `ayt` reads
//! it, in the checker process, and sent back to the process that asked.

use std::path::Path;

use crate::error::Result;
use crate::store::sandbox::Kind;
use crate::store::{bundle, RunLog};

/// Reads `path` as `kind`, whole, in this process, and encodes what it read.
pub fn read(kind: Kind, path: &Path) -> Result<Vec<u8>> {
    match kind {
        Kind::DatasetHeader | Kind::Dataset => super::store_read::read_in_process(kind, path),
        Kind::Bundle => Ok(bundle::read_in_process(path)?.encode()),
        Kind::RunLog => RunLog::open(path)?.snapshot(),
    }
}
