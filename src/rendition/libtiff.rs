//! The TIFFs the pure-Rust `tiff` crate cannot read (planar, YCbCr/JPEG,
//! LZMA, CCITT fax, Lab, palette, 1/2/4-bit, signed or odd samples, …)
//! through Debian's libtiff 4.5 (`libtiff-dev`), by its RGBA interface,
//! which turns every photometric interpretation it knows into 8-bit RGBA.
//! CMYK with an ICC profile and 8-bit CIE Lab are read a scanline at a
//! time and converted with Little CMS instead (when stored in strips). The
//! whole first page is decoded (no shrink as it is read).
//!
//! A small wrapper of our own: no maintained binding of libtiff exists on
//! crates.io. libtiff reads through callbacks over our [`Reader`], so a
//! file is never mapped or read whole, and each open is capped by
//! libtiff's own allocation limit (`TIFFOpenOptionsSetMaxSingleMemAlloc`).

use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::io::{Seek, SeekFrom};

use image::metadata::Orientation;
use image::{DynamicImage, RgbImage, RgbaImage};

use super::input::{Input, Reader, read_up_to};
use super::source::{Decoded, Metadata};
use super::{RenderError, color};

#[repr(C)]
struct RawTiff {
    _private: [u8; 0],
}
#[repr(C)]
struct OpenOptions {
    _private: [u8; 0],
}

type Handler = extern "C" fn(*mut RawTiff, *mut c_void, *const c_char, *const c_char, *mut c_void) -> c_int;

#[link(name = "tiff")]
unsafe extern "C" {
    fn TIFFOpenOptionsAlloc() -> *mut OpenOptions;
    fn TIFFOpenOptionsFree(opts: *mut OpenOptions);
    fn TIFFOpenOptionsSetMaxSingleMemAlloc(opts: *mut OpenOptions, max: isize);
    fn TIFFOpenOptionsSetErrorHandlerExtR(opts: *mut OpenOptions, handler: Handler, data: *mut c_void);
    fn TIFFOpenOptionsSetWarningHandlerExtR(opts: *mut OpenOptions, handler: Handler, data: *mut c_void);
    #[allow(clippy::too_many_arguments)]
    fn TIFFClientOpenExt(
        name: *const c_char,
        mode: *const c_char,
        handle: *mut c_void,
        read: extern "C" fn(*mut c_void, *mut c_void, isize) -> isize,
        write: extern "C" fn(*mut c_void, *mut c_void, isize) -> isize,
        seek: extern "C" fn(*mut c_void, u64, c_int) -> u64,
        close: extern "C" fn(*mut c_void) -> c_int,
        size: extern "C" fn(*mut c_void) -> u64,
        map: extern "C" fn(*mut c_void, *mut *mut c_void, *mut u64) -> c_int,
        unmap: extern "C" fn(*mut c_void, *mut c_void, u64),
        opts: *mut OpenOptions,
    ) -> *mut RawTiff;
    fn TIFFClose(tif: *mut RawTiff);
    fn TIFFGetField(tif: *mut RawTiff, tag: u32, ...) -> c_int;
    fn TIFFReadRGBAImageOriented(
        tif: *mut RawTiff,
        width: u32,
        height: u32,
        raster: *mut u32,
        orientation: c_int,
        stop_on_error: c_int,
    ) -> c_int;
    fn TIFFScanlineSize64(tif: *mut RawTiff) -> u64;
    fn TIFFIsTiled(tif: *mut RawTiff) -> c_int;
    fn TIFFSetDirectory(tif: *mut RawTiff, dir: u32) -> c_int;
    fn TIFFNumberOfDirectories(tif: *mut RawTiff) -> u32;
    fn TIFFReadScanline(tif: *mut RawTiff, buf: *mut c_void, row: u32, sample: u16) -> c_int;
}

/// What libtiff reads from and where its first error goes.
struct Client<'a> {
    reader: Box<dyn Reader + 'a>,
    len: u64,
    error: RefCell<Option<String>>,
}

extern "C" fn read(handle: *mut c_void, buf: *mut c_void, size: isize) -> isize {
    // SAFETY: `handle` is the `Client` the open `Tiff` owns; `buf` holds
    // `size` bytes (libtiff's contract).
    let client = unsafe { &mut *(handle as *mut Client<'_>) };
    let Ok(size) = usize::try_from(size) else { return -1 };
    if size == 0 || buf.is_null() {
        return 0;
    }
    let out = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, size) };
    read_up_to(client.reader.as_mut(), out).map_or(-1, |n| n as isize)
}

extern "C" fn write(_: *mut c_void, _: *mut c_void, _: isize) -> isize {
    -1
}

extern "C" fn seek(handle: *mut c_void, offset: u64, whence: c_int) -> u64 {
    // SAFETY: as in `read`.
    let client = unsafe { &mut *(handle as *mut Client<'_>) };
    let to = match whence {
        0 => SeekFrom::Start(offset),
        1 => SeekFrom::Current(offset as i64),
        _ => SeekFrom::End(offset as i64),
    };
    client.reader.seek(to).unwrap_or(u64::MAX)
}

extern "C" fn close(_: *mut c_void) -> c_int {
    0
}

extern "C" fn size(handle: *mut c_void) -> u64 {
    // SAFETY: as in `read`.
    unsafe { &*(handle as *const Client<'_>) }.len
}

extern "C" fn no_map(_: *mut c_void, _: *mut *mut c_void, _: *mut u64) -> c_int {
    0
}

extern "C" fn no_unmap(_: *mut c_void, _: *mut c_void, _: u64) {}

/// Keeps libtiff's first error (its format string: the arguments are a
/// `va_list` Rust cannot read) and stops it printing to stderr.
extern "C" fn on_error(
    _: *mut RawTiff,
    data: *mut c_void,
    module: *const c_char,
    fmt: *const c_char,
    _: *mut c_void,
) -> c_int {
    // SAFETY: `data` is the open's `Client`; the strings are libtiff's.
    let client = unsafe { &*(data as *const Client<'_>) };
    let text = |p: *const c_char| {
        if p.is_null() {
            String::new()
        } else {
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    let mut error = client.error.borrow_mut();
    if error.is_none() {
        *error = Some(format!("{}: {}", text(module), text(fmt)));
    }
    1
}

extern "C" fn on_warning(_: *mut RawTiff, _: *mut c_void, _: *const c_char, _: *const c_char, _: *mut c_void) -> c_int {
    1
}

/// An open TIFF, closed on drop.
struct Tiff<'a> {
    tif: *mut RawTiff,
    client: Box<Client<'a>>,
}

impl Drop for Tiff<'_> {
    fn drop(&mut self) {
        // SAFETY: opened by `open`, closed once.
        unsafe { TIFFClose(self.tif) };
    }
}

impl<'a> Tiff<'a> {
    fn open(input: Input<'a>, max_alloc: u64) -> Result<Tiff<'a>, RenderError> {
        let mut client = Box::new(Client {
            reader: input.open()?,
            len: input.len()?,
            error: RefCell::new(None),
        });
        let data = &mut *client as *mut Client<'_> as *mut c_void;
        // SAFETY: the options live until the open returns; the client
        // outlives the handle (both are owned by the returned `Tiff`).
        let tif = unsafe {
            let opts = TIFFOpenOptionsAlloc();
            TIFFOpenOptionsSetMaxSingleMemAlloc(opts, isize::try_from(max_alloc).unwrap_or(isize::MAX));
            TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, data);
            TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, data);
            let tif = TIFFClientOpenExt(
                c"original".as_ptr(),
                c"rm".as_ptr(),
                data,
                read,
                write,
                seek,
                close,
                size,
                no_map,
                no_unmap,
                opts,
            );
            TIFFOpenOptionsFree(opts);
            tif
        };
        if tif.is_null() {
            return Err(RenderError::CorruptInput(format!("TIFF: {}", client_error(&client))));
        }
        Ok(Tiff { tif, client })
    }

    fn failed(&self, doing: &str) -> RenderError {
        RenderError::CorruptInput(format!("TIFF {doing}: {}", client_error(&self.client)))
    }

    /// Makes page `page` (from 1) the current one.
    fn turn_to(&self, page: u32) -> Result<(), RenderError> {
        // SAFETY: an open handle; a page past the last fails, not crashes.
        if page > 1 && unsafe { TIFFSetDirectory(self.tif, page - 1) } != 1 {
            // SAFETY: the same handle; libtiff stops at a loop of directories.
            let pages = unsafe { TIFFNumberOfDirectories(self.tif) };
            if page > pages {
                return Err(RenderError::NoSuchPage { page, pages });
            }
            return Err(self.failed("page"));
        }
        Ok(())
    }

    /// The current page's width and height.
    fn size(&self) -> Result<(u32, u32), RenderError> {
        match (self.u32_field(WIDTH), self.u32_field(HEIGHT)) {
            (Some(w), Some(h)) => Ok((w, h)),
            _ => Err(self.failed("size")),
        }
    }

    fn u32_field(&self, tag: u32) -> Option<u32> {
        let mut v: u32 = 0;
        // SAFETY: these tags are LONG-valued; one out-pointer.
        (unsafe { TIFFGetField(self.tif, tag, &mut v as *mut u32) } == 1).then_some(v)
    }

    fn u16_field(&self, tag: u32) -> Option<u16> {
        let mut v: u16 = 0;
        // SAFETY: these tags are SHORT-valued; one out-pointer.
        (unsafe { TIFFGetField(self.tif, tag, &mut v as *mut u16) } == 1).then_some(v)
    }

    fn icc(&self) -> Option<Vec<u8>> {
        let (mut len, mut data): (u32, *const u8) = (0, std::ptr::null());
        // SAFETY: ICCPROFILE gives a count and a pointer into libtiff's copy.
        let ok = unsafe { TIFFGetField(self.tif, 34675, &mut len as *mut u32, &mut data as *mut *const u8) };
        (ok == 1 && !data.is_null()).then(|| unsafe { std::slice::from_raw_parts(data, len as usize) }.to_vec())
    }
}

fn client_error(client: &Client<'_>) -> String {
    client.error.borrow().clone().unwrap_or_else(|| "unreadable".into())
}

const WIDTH: u32 = 256;
const HEIGHT: u32 = 257;
const BITS: u32 = 258;
const PHOTOMETRIC: u32 = 262;
const ORIENTATION: u32 = 274;
const SAMPLES: u32 = 277;
const PLANAR: u32 = 284;
const SEPARATED: u16 = 5;
const CIELAB: u16 = 8;

/// Page `page`'s size (from 1).
pub(super) fn header(input: Input<'_>, page: u32, max_alloc: u64) -> Result<(u32, u32), RenderError> {
    let tiff = Tiff::open(input, max_alloc)?;
    tiff.turn_to(page)?;
    tiff.size()
}

/// Page `page` as 8-bit RGB(A), as stored (its orientation is applied
/// afterwards, with every other format's).
pub(super) fn decode(input: Input<'_>, page: u32, size: (u32, u32), max_alloc: u64) -> Result<Decoded, RenderError> {
    let tiff = Tiff::open(input, max_alloc)?;
    tiff.turn_to(page)?;
    let (w, h) = tiff.size()?;
    // The size the probe checked (readers may differ over duplicate tags).
    if (w, h) != size {
        return Err(RenderError::CorruptInput(format!(
            "TIFF: {w}×{h} to libtiff, {}×{} to the probe",
            size.0, size.1
        )));
    }
    let stored = tiff.u16_field(ORIENTATION).unwrap_or(1);
    let orientation = Orientation::from_exif(stored as u8).unwrap_or(Orientation::NoTransforms);
    let icc = tiff.icc();
    let cmyk_profile = icc
        .as_deref()
        .filter(|p| lcms2::Profile::new_icc(p).is_ok_and(|p| p.color_space() == lcms2::ColorSpaceSignature::CmykData));
    // SAFETY: an open handle.
    let strips = unsafe { TIFFIsTiled(tiff.tif) } == 0;
    let contiguous8 = strips && tiff.u16_field(BITS) == Some(8) && tiff.u16_field(PLANAR).unwrap_or(1) == 1;
    let photometric = tiff.u16_field(PHOTOMETRIC);
    let (image, icc) = match (photometric, cmyk_profile) {
        (Some(SEPARATED), Some(profile)) if contiguous8 => (cmyk_with_profile(&tiff, w, h, profile)?, None),
        (Some(CIELAB), _) if contiguous8 && tiff.u16_field(SAMPLES) == Some(3) => (lab8(&tiff, w, h)?, None),
        _ => (rgba(&tiff, w, h, stored)?, icc),
    };
    Ok(Decoded {
        image,
        icc,
        metadata: Metadata::default(),
        orientation,
    })
}

/// libtiff's RGBA interface, asked for the file's own orientation so it
/// flips nothing, into the picture's own buffer (held once: w × h × 4
/// bytes); alpha comes premultiplied and is undone in place.
fn rgba(tiff: &Tiff<'_>, w: u32, h: u32, orientation: u16) -> Result<DynamicImage, RenderError> {
    let pixels = usize::try_from(u64::from(w) * u64::from(h)).map_err(|_| tiff.failed("size"))?;
    let mut bytes = vec![0u8; pixels.checked_mul(4).ok_or_else(|| tiff.failed("size"))?];
    // libtiff writes u32s: the allocator aligns this well beyond 4 bytes,
    // but that is checked rather than assumed.
    if bytes.as_ptr().align_offset(std::mem::align_of::<u32>()) != 0 {
        return Err(RenderError::UnsupportedFormat("unaligned TIFF raster".into()));
    }
    // SAFETY: `bytes` holds w × h u32s and is aligned for them.
    let ok = unsafe {
        TIFFReadRGBAImageOriented(
            tiff.tif,
            w,
            h,
            bytes.as_mut_ptr().cast::<u32>(),
            c_int::from(orientation),
            1,
        )
    };
    if ok != 1 {
        return Err(tiff.failed("pixels"));
    }
    let mut opaque = true;
    for p in bytes.chunks_exact_mut(4) {
        // Each u32 is A<<24 | B<<16 | G<<8 | R: R, G, B, A in memory on
        // little-endian machines.
        let v = u32::from_ne_bytes([p[0], p[1], p[2], p[3]]);
        p.copy_from_slice(&v.to_le_bytes());
        let a = u32::from(p[3]);
        opaque &= a == 255;
        if a > 0 && a < 255 {
            for c in &mut p[..3] {
                *c = ((u32::from(*c) * 255 + a / 2) / a).min(255) as u8;
            }
        }
    }
    if !opaque {
        return RgbaImage::from_raw(w, h, bytes)
            .map(DynamicImage::ImageRgba8)
            .ok_or_else(|| tiff.failed("size"));
    }
    // Opaque: RGB, packed in place.
    for i in 0..pixels {
        bytes.copy_within(i * 4..i * 4 + 3, i * 3);
    }
    bytes.truncate(pixels * 3);
    RgbImage::from_raw(w, h, bytes)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| tiff.failed("size"))
}

/// 8-bit contiguous CMYK through its profile.
fn cmyk_with_profile(tiff: &Tiff<'_>, w: u32, h: u32, profile: &[u8]) -> Result<DynamicImage, RenderError> {
    let convert = color::CmykToSrgb::new(Some(profile), false)?;
    by_scanline(tiff, w, h, 4, |px, rgb| rgb.extend(convert.convert(px)))
}

/// 8-bit contiguous CIE L*a*b* through Little CMS (libtiff's own RGBA
/// conversion is only approximate).
fn lab8(tiff: &Tiff<'_>, w: u32, h: u32) -> Result<DynamicImage, RenderError> {
    use lcms2::{CIExyY, GlobalContext, Intent, PixelFormat, Profile, Transform};
    let d50 = CIExyY {
        x: 0.3457,
        y: 0.3585,
        Y: 1.0,
    };
    let failed = |e: lcms2::Error| RenderError::UnsupportedFormat(format!("TIFF Lab: {e}"));
    let lab = Profile::new_lab4_context(GlobalContext::new(), &d50).map_err(failed)?;
    let to_srgb: Transform<[u8; 3], [u8; 3]> = Transform::new(
        &lab,
        PixelFormat::Lab_8,
        &Profile::new_srgb(),
        PixelFormat::RGB_8,
        Intent::Perceptual,
    )
    .map_err(failed)?;
    by_scanline(tiff, w, h, 3, |px, rgb| {
        // TIFF's a* and b* are signed; Little CMS's 8-bit Lab is offset by 128.
        let lab: Vec<[u8; 3]> = px.chunks_exact(3).map(|p| [p[0], p[1] ^ 0x80, p[2] ^ 0x80]).collect();
        let mut out = vec![[0u8; 3]; lab.len()];
        to_srgb.transform_pixels(&lab, &mut out);
        rgb.extend(out.into_iter().flatten());
    })
}

/// Reads each scanline of `samples`-sample 8-bit pixels (extra samples
/// dropped) and hands them to `convert`, which appends RGB.
fn by_scanline(
    tiff: &Tiff<'_>,
    w: u32,
    h: u32,
    samples: usize,
    mut convert: impl FnMut(&[u8], &mut Vec<u8>),
) -> Result<DynamicImage, RenderError> {
    let stored = usize::from(tiff.u16_field(SAMPLES).unwrap_or(1));
    // SAFETY: an open handle.
    let line = usize::try_from(unsafe { TIFFScanlineSize64(tiff.tif) }).map_err(|_| tiff.failed("scanline"))?;
    if stored < samples || line < w as usize * stored {
        return Err(tiff.failed("scanline size"));
    }
    let mut buf = vec![0u8; line];
    let mut px = vec![0u8; w as usize * samples];
    let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
    for row in 0..h {
        // SAFETY: `buf` holds one scanline.
        if unsafe { TIFFReadScanline(tiff.tif, buf.as_mut_ptr().cast::<c_void>(), row, 0) } != 1 {
            return Err(tiff.failed("scanline"));
        }
        for (from, to) in buf.chunks_exact(stored).zip(px.chunks_exact_mut(samples)) {
            to.copy_from_slice(&from[..samples]);
        }
        convert(&px, &mut rgb);
    }
    RgbImage::from_raw(w, h, rgb)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| tiff.failed("size"))
}
