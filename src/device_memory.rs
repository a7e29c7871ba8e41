//! CUDA device memory: candle allocates through the driver's stream-ordered allocator
//! (`cuMemAllocAsync`, the device's default memory pool). Two settings of that pool:
//! - freed memory stays in the pool (release threshold = max) instead of going back to the
//!   driver at every synchronisation, as PyTorch's caching allocator keeps it: a training step
//!   frees and reallocates the same activations every step;
//! - its high-water mark of memory in use is the peak GPU memory `ayt bench` reports.
//!
//! On the CPU, and in builds without the `cuda` feature, there is nothing to set or report.

use candle_core::Device;

/// Keeps freed memory in `dev`'s pool (see the module doc). A no-op on the CPU.
pub fn keep_freed_memory(dev: &Device) -> crate::Result<()> {
    match ordinal(dev) {
        Some(o) => imp::keep_freed_memory(o),
        None => Ok(()),
    }
}

/// The most memory in use on `dev`'s pool since the last [`reset_peak`], in MiB; `None` on the
/// CPU or where the driver does not say.
pub fn peak_mib(dev: &Device) -> Option<f64> {
    ordinal(dev).and_then(imp::peak_bytes).map(|b| b as f64 / 1048576.0)
}

/// Resets the high-water mark to the memory in use now.
pub fn reset_peak(dev: &Device) {
    if let Some(o) = ordinal(dev) {
        imp::reset_peak(o);
    }
}

fn ordinal(dev: &Device) -> Option<usize> {
    match dev.location() {
        candle_core::DeviceLocation::Cuda { gpu_id } => Some(gpu_id),
        _ => None,
    }
}

#[cfg(feature = "cuda")]
mod imp {
    use candle_core::cuda_backend::cudarc::driver::sys::{self, CUmemPool_attribute as Attr, CUresult};

    fn pool(ordinal: usize) -> Option<sys::CUmemoryPool> {
        let mut dev: sys::CUdevice = 0;
        let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
        // SAFETY: plain driver queries writing into the locals above.
        unsafe {
            (sys::cuDeviceGet(&mut dev, ordinal as i32) == CUresult::CUDA_SUCCESS).then_some(())?;
            (sys::cuDeviceGetDefaultMemPool(&mut pool, dev) == CUresult::CUDA_SUCCESS).then_some(pool)
        }
    }

    fn set(ordinal: usize, attr: Attr, mut value: u64) -> bool {
        let Some(p) = pool(ordinal) else { return false };
        // SAFETY: both attributes take a cuuint64_t.
        unsafe { sys::cuMemPoolSetAttribute(p, attr, (&mut value as *mut u64).cast()) == CUresult::CUDA_SUCCESS }
    }

    pub fn keep_freed_memory(ordinal: usize) -> crate::Result<()> {
        if set(ordinal, Attr::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, u64::MAX) {
            Ok(())
        } else {
            Err(crate::Error::msg(format!("cuda:{ordinal}: cannot set the memory pool's release threshold")))
        }
    }

    pub fn peak_bytes(ordinal: usize) -> Option<u64> {
        let p = pool(ordinal)?;
        let mut value: u64 = 0;
        // SAFETY: USED_MEM_HIGH is a cuuint64_t.
        let ok = unsafe { sys::cuMemPoolGetAttribute(p, Attr::CU_MEMPOOL_ATTR_USED_MEM_HIGH, (&mut value as *mut u64).cast()) };
        (ok == CUresult::CUDA_SUCCESS).then_some(value)
    }

    pub fn reset_peak(ordinal: usize) {
        // setting the high-water mark takes only 0, which resets it to the current use
        set(ordinal, Attr::CU_MEMPOOL_ATTR_USED_MEM_HIGH, 0);
    }
}

#[cfg(not(feature = "cuda"))]
mod imp {
    pub fn keep_freed_memory(ordinal: usize) -> crate::Result<()> {
        Err(crate::Error::msg(format!("cuda:{ordinal}: this ayt was built without the `cuda` feature")))
    }
    pub fn peak_bytes(_: usize) -> Option<u64> {
        None
    }
    pub fn reset_peak(_: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_has_no_pool_to_set_or_report() {
        keep_freed_memory(&Device::Cpu).unwrap();
        reset_peak(&Device::Cpu);
        assert_eq!(peak_mib(&Device::Cpu), None);
    }
}
