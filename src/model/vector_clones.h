// Private to src/model: the attribute that compiles a hot loop once per x86-64 feature level and picks the
// best version when the program starts (GCC function multi-versioning), so that one binary uses AVX-512 or
// AVX2 where the CPU has them. Each version is deterministic; a job's ranks run on nodes of one kind, so
// they all pick the same one. Elsewhere (other compilers, other architectures) it is empty.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MSLR_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MSLR_VECTOR_CLONES
#endif
