// Stands in for the header a CUDA build of LibTorch generates, so that mslr's CUDA code (src/core/gpu.cpp) can
// be compiled — not linked — against the headers of a LibTorch without CUDA (test gpu_sources_compile).
#pragma once
#define C10_CUDA_BUILD_SHARED_LIBS
