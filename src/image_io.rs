//! 8-bit image helpers: value mapping, grids and PNG reading / writing.
//!
//! Images here are interleaved (HWC, or NHWC for several), one byte per channel.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use crate::error::{Error, Result, WithPath};

/// The grey value of the padding between grid cells (mid-grey, so black and white digits both
/// stand out from it).
pub const GRID_PAD_VALUE: u8 = 128;

/// Map a value in [-1, 1] to 0..=255: clamp, then round (`-1 -> 0`, `1 -> 255`). NaN maps to 0.
pub fn to_u8(x: f32) -> u8 {
    if x.is_nan() {
        return 0;
    }
    ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

/// Tile `n` NHWC images of `h x w x c` into one `c`-channel image with `cols` columns.
///
/// Cells are separated (and surrounded) by `pad` pixels of [`GRID_PAD_VALUE`] (mid-grey).
/// Returns `(width, height, pixels)`, pixels interleaved HWC. If `images` holds fewer than `n`
/// images, only the complete ones are drawn; `cols == 0` is treated as 1.
pub fn grid(images: &[u8], n: usize, h: usize, w: usize, c: usize, cols: usize, pad: usize) -> (usize, usize, Vec<u8>) {
    let per = h * w * c;
    let n = n.min(images.len().checked_div(per).unwrap_or(0));
    let cols = cols.max(1);
    let rows = n.div_ceil(cols);
    let width = cols * w + (cols + 1) * pad;
    let height = rows * h + (rows + 1) * pad;
    let mut out = vec![GRID_PAD_VALUE; width * height * c];
    for i in 0..n {
        let (r, col) = (i / cols, i % cols);
        let x0 = pad + col * (w + pad);
        let y0 = pad + r * (h + pad);
        let img = &images[i * per..(i + 1) * per];
        for y in 0..h {
            let src = &img[y * w * c..(y + 1) * w * c];
            let dst0 = ((y0 + y) * width + x0) * c;
            out[dst0..dst0 + w * c].copy_from_slice(src);
        }
    }
    (width, height, out)
}

/// Write an 8-bit PNG with 1 (grey) or 3 (RGB) channels; `data` is interleaved HWC.
pub fn write_png(path: impl AsRef<Path>, width: usize, height: usize, channels: usize, data: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let color = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        _ => return Err(Error::file(path, format!("PNG: {channels} channels requested, only 1 (grey) or 3 (RGB) can be written"))),
    };
    if data.len() != width * height * channels {
        return Err(Error::file(
            path,
            format!("PNG: {width}x{height}x{channels} needs {} bytes, got {}", width * height * channels, data.len()),
        ));
    }
    let (w32, h32) = match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => (w, h),
        _ => return Err(Error::file(path, format!("PNG: invalid size {width}x{height}"))),
    };
    let file = File::create(path).with_path(path)?;
    let mut enc = png::Encoder::new(BufWriter::new(file), w32, h32);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().with_path(path)?;
    writer.write_image_data(data).with_path(path)?;
    writer.finish().with_path(path)?;
    Ok(())
}

/// The largest decoded image `read_png` accepts (a 4096 x 4096 RGBA image is 64 MiB).
pub const MAX_PNG_BYTES: usize = 256 << 20;

/// Read a PNG as 8-bit `(width, height, channels, pixels)` with 1 or 3 channels (HWC).
///
/// Grey, grey+alpha, RGB and RGBA are accepted, alpha is dropped. Palette images are expanded to
/// RGB, images with fewer than 8 bits to 8 bits, and 16-bit images are reduced to 8 bits (high
/// byte).
pub fn read_png(path: impl AsRef<Path>) -> Result<(usize, usize, usize, Vec<u8>)> {
    let path = path.as_ref();
    let file = File::open(path).with_path(path)?;
    decode_png(BufReader::new(file), path)
}

/// [`read_png`] of the PNG bytes that `input` gives; errors name `path` (a file, or an entry of
/// an archive such as `data.zip/00000/img00000001.png`).
pub fn decode_png<R: std::io::BufRead + std::io::Seek>(input: R, path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    // A PNG declares its size up front: anything over the limit is refused before a buffer is made
    // (a "PNG bomb": a few kB that inflate to gigabytes).
    let limits = png::Limits { bytes: MAX_PNG_BYTES };
    let mut dec = png::Decoder::new_with_limits(input, limits);
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(|e| Error::file(path, format!("PNG: {e}")))?;
    let size = reader.output_buffer_size().filter(|n| *n <= MAX_PNG_BYTES).ok_or_else(|| {
        let (w, h) = reader.info().size();
        Error::file(path, format!("PNG: a {w}x{h} image is over the limit of {} MiB decoded", MAX_PNG_BYTES >> 20))
    })?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(|e| Error::file(path, format!("PNG: {e}")))?;
    if info.bit_depth != png::BitDepth::Eight {
        return Err(Error::file(path, format!("PNG: unsupported bit depth {:?} after conversion", info.bit_depth)));
    }
    let (in_c, out_c) = match info.color_type {
        png::ColorType::Grayscale => (1, 1),
        png::ColorType::GrayscaleAlpha => (2, 1),
        png::ColorType::Rgb => (3, 3),
        png::ColorType::Rgba => (4, 3),
        png::ColorType::Indexed => return Err(Error::file(path, "PNG: palette image could not be expanded to RGB")),
    };
    let (w, h) = (info.width as usize, info.height as usize);
    if info.line_size < w * in_c || buf.len() < info.line_size * h {
        return Err(Error::file(path, "PNG: decoded buffer smaller than the image"));
    }
    let mut out = Vec::with_capacity(w * h * out_c);
    for y in 0..h {
        let row = &buf[y * info.line_size..y * info.line_size + w * in_c];
        if in_c == out_c {
            out.extend_from_slice(row);
        } else {
            for px in row.chunks_exact(in_c) {
                out.extend_from_slice(&px[..out_c]);
            }
        }
    }
    Ok((w, h, out_c, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_u8_maps_range_and_clamps() {
        assert_eq!(to_u8(-1.0), 0);
        assert_eq!(to_u8(1.0), 255);
        assert_eq!(to_u8(0.0), 128);
        assert_eq!(to_u8(-7.0), 0);
        assert_eq!(to_u8(3.0), 255);
        assert_eq!(to_u8(f32::NAN), 0);
    }

    #[test]
    fn grid_places_cells() {
        // two 1x1 grey images, 2 columns, pad 1 -> 5x3
        let (w, h, px) = grid(&[10, 20], 2, 1, 1, 1, 2, 1);
        assert_eq!((w, h), (5, 3));
        assert_eq!(px[5 + 1], 10);
        assert_eq!(px[5 + 3], 20);
        assert_eq!(px[0], GRID_PAD_VALUE);
    }

    #[test]
    fn png_round_trip_grey_and_rgb() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        let data: Vec<u8> = (0..12).map(|i| i * 20).collect();
        write_png(&p, 4, 3, 1, &data).unwrap();
        assert_eq!(read_png(&p).unwrap(), (4, 3, 1, data.clone()));
        write_png(&p, 2, 2, 3, &data).unwrap();
        assert_eq!(read_png(&p).unwrap(), (2, 2, 3, data));
    }

    fn write_raw(p: &Path, color: png::ColorType, depth: png::BitDepth, data: &[u8]) {
        let f = File::create(p).unwrap();
        let mut enc = png::Encoder::new(BufWriter::new(f), 2, 1);
        enc.set_color(color);
        enc.set_depth(depth);
        if color == png::ColorType::Indexed {
            enc.set_palette(vec![0, 0, 0, 255, 128, 0]);
        }
        let mut w = enc.write_header().unwrap();
        w.write_image_data(data).unwrap();
        w.finish().unwrap();
    }

    #[test]
    fn png_alpha_palette_and_16_bit_are_converted() {
        use png::{BitDepth, ColorType};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        write_raw(&p, ColorType::GrayscaleAlpha, BitDepth::Eight, &[10, 255, 20, 0]);
        assert_eq!(read_png(&p).unwrap(), (2, 1, 1, vec![10, 20]));
        write_raw(&p, ColorType::Rgba, BitDepth::Eight, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(read_png(&p).unwrap(), (2, 1, 3, vec![1, 2, 3, 5, 6, 7]));
        write_raw(&p, ColorType::Grayscale, BitDepth::Sixteen, &[0x12, 0x34, 0xab, 0xcd]);
        assert_eq!(read_png(&p).unwrap(), (2, 1, 1, vec![0x12, 0xab]));
        write_raw(&p, ColorType::Indexed, BitDepth::Eight, &[1, 0]);
        assert_eq!(read_png(&p).unwrap(), (2, 1, 3, vec![255, 128, 0, 0, 0, 0]));
    }

    #[test]
    fn png_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.png");
        std::fs::write(&p, b"not a png").unwrap();
        let e = read_png(&p).unwrap_err().to_string();
        assert!(e.contains("bad.png"), "{e}");
        let e = write_png(&p, 2, 2, 2, &[0; 8]).unwrap_err().to_string();
        assert!(e.contains("bad.png") && e.contains("channels"), "{e}");
    }

    #[test]
    fn a_png_bomb_is_refused_before_its_buffer_is_made() {
        // a valid 1x1 PNG whose header is rewritten to claim 60000 x 60000 RGB (10.8 GB)
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bomb.png");
        write_png(&p, 1, 1, 3, &[1, 2, 3]).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[16..20].copy_from_slice(&60000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&60000u32.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        std::fs::write(&p, &bytes).unwrap();
        let e = read_png(&p).unwrap_err().to_string();
        assert!(e.contains("bomb.png") && e.to_lowercase().contains("limit"), "{e}");
    }
}
