//! `ayt data ...` (the data set store) and `ayt augment preview`.

use std::path::PathBuf;

use anyhow::bail;

use crate::cli::{AugmentCmd, DataCmd, ImportCmd};
use ayt::data::{idx, png_import, DatasetInfo, DatasetStore, ImageSet};
use ayt::paths::Paths;

pub fn data(paths: &Paths, cmd: DataCmd) -> anyhow::Result<()> {
    let store = DatasetStore::new(paths.datasets());
    match cmd {
        DataCmd::Import(ImportCmd::Mnist { paths: files, name, test }) => {
            let (images, labels) = match files.as_slice() {
                [dir] if dir.is_dir() => idx::mnist_files_in(dir, test)?,
                [images, labels] => (images.clone(), labels.clone()),
                _ => bail!("ayt data import mnist: give a folder, or the images and labels files"),
            };
            save_imported(&store, &name, idx::read_mnist_pair(&images, &labels)?)?;
        }
        DataCmd::Import(ImportCmd::Png { folder, name }) => {
            save_imported(&store, &name, png_import::import_png_folder(&folder)?)?;
        }
        DataCmd::Import(ImportCmd::Cifar10 { path, name, test }) => {
            let name = name.unwrap_or_else(|| if test { "cifar10-test" } else { "cifar10" }.to_string());
            save_imported(&store, &name, ayt::data::cifar::import(&path, test)?)?;
        }
        DataCmd::Import(ImportCmd::EdmZip { file, name }) => {
            save_imported(&store, &name, ayt::data::edm_zip::import(&file)?)?;
        }
        DataCmd::List => {
            ayt::data::mnist::ensure_mnist(&store)?;
            let mut unreadable = 0;
            for (name, info) in store.list()? {
                match info {
                    Ok(info) => {
                        let sha = &info.sha256[..12.min(info.sha256.len())];
                        println!("{name:<20} {:>7} x {}x{}x{}  {}  sha256 {sha}", info.n, info.h, info.w, info.c, info.dtype);
                    }
                    Err(e) => {
                        println!("{name:<20} cannot be read: {e}");
                        unreadable += 1;
                    }
                }
            }
            if unreadable > 0 {
                anyhow::bail!("{unreadable} data set(s) in {} cannot be read (listed above)", store.root.display());
            }
        }
        DataCmd::Show { name, preview } => {
            ayt::data::mnist::ensure_if_builtin(&store, &name)?;
            let info = store.info(&name)?;
            print_info(&info);
            let out = preview.unwrap_or_else(|| PathBuf::from(format!("{name}-preview.png")));
            ayt::data::preview_png(&store.load(&name)?, &out, 64)?;
            println!("preview  {}", out.display());
        }
    }
    Ok(())
}

fn save_imported(store: &DatasetStore, name: &str, set: ImageSet) -> anyhow::Result<()> {
    let path = store.save(name, &set)?;
    eprintln!("imported {} images {}x{}x{} as {name}: {}", set.n, set.h, set.w, set.c, path.display());
    Ok(())
}

fn print_info(info: &DatasetInfo) {
    println!("name     {}\nfile     {}", info.name, info.path.display());
    println!("shape    [{}, {}, {}, {}] {}", info.n, info.h, info.w, info.c, info.dtype);
    println!("sha256   {}\nsource   {}", info.sha256, info.source);
    if let Some(counts) = &info.label_counts {
        let parts: Vec<String> = counts.iter().map(|(l, n)| format!("{l}:{n}")).collect();
        println!("labels   {}", parts.join(" "));
    }
}

pub fn augment(paths: &Paths, AugmentCmd::Preview { dataset, n, p, out, seed }: AugmentCmd) -> anyhow::Result<()> {
    let batch = ayt::augment::preview::load_batch(&DatasetStore::new(paths.datasets()), &dataset, n, seed)?;
    for (i, labels) in ayt::augment::preview::preview(&batch, p, seed, &out)?.iter().enumerate() {
        let parts: Vec<String> = labels.iter().map(|(name, v)| format!("{name}={v:.3}")).collect();
        println!("{i:>3}: {}", if parts.is_empty() { "clean".to_string() } else { parts.join(" ") });
    }
    eprintln!("wrote {} augmented images of {dataset} to {}", batch.b, out.display());
    Ok(())
}
