// <immintrin.h> for the kernel units. GCC 12 warns about the deliberately undefined lanes inside
// its own AVX-512 intrinsics (GCC bug 105593); the warnings are silenced for the header's lines
// only, so the kernels themselves stay checked.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
