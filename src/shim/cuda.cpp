// CUDA memory statistics of the caching allocator (what PyTorch reports as
// torch.cuda.max_memory_allocated / max_memory_reserved). Compiled with the CUDA headers
// when they are installed beside torch; without them the functions report "unknown".
#include <cstdint>

#include "shim.h"

#ifdef STARGAN_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

extern "C" {

bool stargan_cuda_peak_memory(int device, int64_t* peak_allocated, int64_t* peak_reserved) {
#ifdef STARGAN_CUDA
  try {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
    const auto all = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    *peak_allocated = stats.allocated_bytes[all].peak;
    *peak_reserved = stats.reserved_bytes[all].peak;
    return true;
  } catch (...) {
    return false;
  }
#else
  (void)device;
  *peak_allocated = -1;
  *peak_reserved = -1;
  return false;
#endif
}

void stargan_cuda_reset_peak_memory(int device) {
#ifdef STARGAN_CUDA
  try {
    c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
  } catch (...) {
  }
#else
  (void)device;
#endif
}

}  // extern "C"
